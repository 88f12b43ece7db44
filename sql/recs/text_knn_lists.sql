-- text_knn: items whose text is close to the user's recent history. The scored candidates are
-- recs.text_knn_scores (cosine of each item's text embedding, ml.item_text_embeddings, to a
-- recency-weighted mean of the user's last var text.knn_history_events events' embeddings;
-- never a history item). Here: the reason names the recent history item whose text is closest
-- to the candidate, and lists shorter than K (a user whose recent items have no text, a
-- catalogue without text) are filled from the popularity list (score 0, 'popular now').
-- With var text.enabled false the table is empty and recs/strategy_lists.sql leaves it out.
with popularity_lists as (
    select purpose, user_id, item_id, rank, reason from {{ ref('popularity_lists') }}
),

items as (
    select item_id, title from {{ ref('items') }}
),

top_scored as (
    select
        scores.purpose,
        scores.user_id,
        scores.item_id,
        scores.score,
        'like ' || items.title as reason,
        1 as source_order,
        scores.source_rank
    from {{ ref('text_knn_scores') }} scores
    join items on items.item_id = scores.closest_history_item
),

lists as (
    {{ fill_from_popularity('text_knn', 'top_scored', 'popularity_lists') }}
)

select * from lists
where {{ text_enabled() }}
