-- The ratio measures of eval.metrics and eval.metrics_by_segment lie in [0, 1]; novelty
-- (bits) is at least 0; every strategy has a row for every K. Returns the offending rows.
{% set ks = var('ks', [10]) %}
with metrics as (
    select 'all' as rfm_segment, * from {{ ref('metrics') }}
    union all by name
    select * from {{ ref('metrics_by_segment') }}
),

out_of_range as (
    select rfm_segment, strategy, k, 'out of range' as problem
    from metrics
    where not (
        hit_rate between 0 and 1
        and precision between 0 and 1
        and recall between 0 and 1
        and ndcg between 0 and 1
        and mrr between 0 and 1
        and coverage between 0 and 1
        and coalesce(diversity between 0 and 1, true)
        and coalesce(new_interest_hit_rate between 0 and 1, true)
        and coalesce(novelty >= 0, true)
        and precision <= hit_rate
        and ndcg <= hit_rate
    )
),

missing_k as (
    select strategies.strategy, cutoffs.k
    from (select distinct strategy from {{ ref('metrics') }}) strategies
    cross join (select unnest({{ ks }}) as k) cutoffs
    anti join {{ ref('metrics') }} metrics using (strategy, k)
)

select rfm_segment, strategy, k, problem from out_of_range
union all
select 'all', strategy, k, 'missing k' from missing_k
