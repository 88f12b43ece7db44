-- recs.served_recommendations.score never rises down a list: a dashboard that sorts a user's
-- list by score must show it in the strategy's own order. Fails with each slot whose score
-- is above the score of the slot before it.
with served as (
    select
        strategy,
        user_id,
        rank,
        score,
        lag(score) over (partition by strategy, user_id order by rank) as score_above
    from {{ ref('served_recommendations') }}
)

select strategy, user_id, rank, score, score_above
from served
where score > score_above
