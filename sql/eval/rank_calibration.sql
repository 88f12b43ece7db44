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
),

-- The pooled figure can still rise from one bucket to the next (a few hits more at ranks 2-3
-- than at rank 1), and a dashboard sorting by it would put rank 2 above rank 1. The isotonic
-- (non-increasing) fit over the buckets, weighted by ranks x users, is the closest such
-- sequence: at bucket i, min over j <= i of max over l >= i of the mean hit rate of buckets
-- j..l, which pool-adjacent-violators computes too; a handful of buckets makes the pairs cheap.
buckets as (
    select strategy, bucket, sum(n_hits) as n_hits, count(*) * greatest(max(evaluated.n_users), 1) as n_slots
    from bucketed
    cross join evaluated
    group by strategy, bucket
),

spans as (
    select lo.strategy, lo.bucket as first_bucket, hi.bucket as last_bucket,
           sum(mid.n_hits) / sum(mid.n_slots) as mean_hit_rate
    from buckets lo
    join buckets hi on hi.strategy = lo.strategy and hi.bucket >= lo.bucket
    join buckets mid on mid.strategy = lo.strategy and mid.bucket between lo.bucket and hi.bucket
    group by all
),

isotonic as (
    select strategy, bucket, min(upper_mean) as isotonic_hit_probability
    from (
        select buckets.strategy, buckets.bucket, spans.first_bucket, max(spans.mean_hit_rate) as upper_mean
        from buckets
        join spans on spans.strategy = buckets.strategy
            and spans.first_bucket <= buckets.bucket and spans.last_bucket >= buckets.bucket
        group by all
    )
    group by strategy, bucket
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
        6) as hit_probability,
    round(isotonic.isotonic_hit_probability, 6) as isotonic_hit_probability
from bucketed
cross join evaluated
join isotonic using (strategy, bucket)
order by strategy, rank
