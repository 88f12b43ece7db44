-- text_knn: items whose text is close to the user's recent history. The scored candidates are
-- recs.text_knn_scores (cosine of each item's text embedding, ml.item_text_embeddings, to a
-- recency-weighted mean of the user's last var text.knn_history_events events' embeddings;
-- never a history item). Here: the reason names the recent history item whose text is closest
-- to the candidate, and lists shorter than K (a user whose recent items have no text, a
-- catalogue without text) are filled from the popularity list (score 0, 'popular now').
-- With var text.enabled false the table is empty and recs/strategy_lists.sql leaves it out.
select * from (
    {{ like_history_lists('text_knn', ref('text_knn_scores')) }}
) as lists
where {{ text_enabled() }}
