-- item_knn: item-to-item cosine similarity of co-occurrence over users. The neighbours are
-- recs.item_knn_neighbours (each item's var('knn_neighbours') most similar items, counted over
-- each user's last var('knn_max_user_events') events and pairs seen by at least
-- var('knn_min_co_users') users of the purpose's fit events, features.fit_events); the scored
-- candidates are recs.item_knn_scores (a candidate's score is the sum of its similarities to
-- the user's history items, ties to the more popular item, never a history item). Both are
-- Python models that run their SQL a bucket of items or a block of users at a time, so their
-- memory stays bounded at 10M events. Here: the reason names the candidate's most similar
-- history item, and lists shorter than K are filled from the popularity list (score 0,
-- 'popular now').
with popularity_lists as (
    select purpose, user_id, item_id, rank, reason from {{ ref('popularity_lists') }}
),

items as (
    select item_id, title from {{ ref('items') }}
),

-- every history item is in staging.items (staging rejects unknown items), so the join to
-- items drops no candidate
top_scored as (
    select
        scores.purpose,
        scores.user_id,
        scores.item_id,
        scores.score,
        'like ' || items.title as reason,
        1 as source_order,
        scores.source_rank
    from {{ ref('item_knn_scores') }} scores
    join items on items.item_id = scores.closest_history_item
),

lists as (
    {{ fill_from_popularity('item_knn', 'top_scored', 'popularity_lists') }}
)

select * from lists
