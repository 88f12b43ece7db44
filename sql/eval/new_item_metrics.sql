-- The evaluation protocol's hit rate and NDCG per strategy and K over the users whose test
-- item is new (features.new_items; with several test items, as the temporal rule allows:
-- users with a new one): eval.user_metrics' rows of those users, averaged as eval.metrics
-- averages them (sql/macros/measures.sql), so the figures agree with eval.metrics on the same
-- users. Under split_rule new_items those items' earlier events were hidden from every
-- holdout list (is_cold); under the other rules they were seen, and the rows say so.
with new_test_users as (
    select distinct splits.user_id
    from {{ ref('event_splits') }} splits
    join {{ ref('new_items') }} new_items using (item_id)
    where splits.split = 'test' and new_items.is_new
),

per_user as (
    select user_metrics.*
    from {{ ref('user_metrics') }} user_metrics
    semi join new_test_users using (user_id)
),

grid as (
    select distinct strategy, k from {{ ref('user_metrics') }}
),

averaged as (
    select
        strategy,
        k,
        count(*) as n_users,
        round(avg(hit::decimal(38, 18)), 12) as hit_rate,
        round(avg(ndcg::decimal(38, 18)), 12) as ndcg,
        round(avg(reciprocal_rank::decimal(38, 18)), 12) as mrr
    from per_user
    group by strategy, k
)

select
    grid.strategy,
    grid.k,
    '{{ var('split_rule', 'leave_last_out') }}' as split_rule,
    {{ 'true' if var('split_rule', 'leave_last_out') == 'new_items' else 'false' }} as is_cold,
    coalesce(averaged.n_users, 0) as n_users,
    averaged.hit_rate,
    averaged.ndcg,
    averaged.mrr
from grid
left join averaged using (strategy, k)
order by grid.strategy, grid.k
