-- How likely an item at a given rank of a strategy's list is the user's next watch: on the
-- holdout lists (built without the test events), the share of evaluated users whose test
-- item sat at that rank. Ranks are pooled in doubling buckets (1, 2-3, 4-7, 8-15, 16-31, ...)
-- so that a few hundred users give a steady figure. recs.served_recommendations shows it as a
-- score that means the same for every strategy.
with lists as (
    select strategy, user_id, rank, item_id from {{ ref('holdout_recommendations') }}
),

tests as (
    select distinct user_id, item_id from {{ ref('event_splits') }} where split = 'test'
),

evaluated as (
    select count(distinct user_id) as n_users from tests
),

hits as (
    select lists.strategy, lists.rank, count(*) as n_hits
    from lists
    join tests using (user_id, item_id)
    group by all
),

ranks as (
    select distinct strategy, rank from lists
),

bucketed as (
    select
        ranks.strategy,
        ranks.rank,
        floor(log2(ranks.rank))::integer as bucket,
        coalesce(hits.n_hits, 0) as n_hits
    from ranks
    left join hits using (strategy, rank)
)

select
    strategy,
    rank::integer as rank,
    (2 ** bucket)::integer as bucket_first_rank,
    (2 ** (bucket + 1) - 1)::integer as bucket_last_rank,
    n_hits,
    evaluated.n_users,
    round(
        sum(n_hits) over (partition by strategy, bucket)
        / (count(*) over (partition by strategy, bucket) * greatest(evaluated.n_users, 1)),
        6) as hit_probability
from bucketed
cross join evaluated
order by strategy, rank
