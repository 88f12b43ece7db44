{#
  The evaluation protocol's measures per (extra grouping columns, strategy, K): eval.user_metrics
  averaged over the evaluated users (diversity and novelty over users with a list), plus
  coverage: distinct items in the first K of the group's lists / items in the catalogue.
  eval.metrics calls it with no extra column, eval.metrics_by_segment with ['rfm_segment'].
#}
{% macro aggregate_metrics(by) -%}
{%- set keys = by + ['strategy', 'k'] -%}
with user_metrics as (
    select * from {{ ref('user_metrics') }}
),

catalogue as (
    select count(*) as n_items from {{ ref('items') }}
),

recommended as (
    select
        {% for c in keys %}user_metrics.{{ c }}, {% endfor %}
        count(distinct lists.item_id) as n_recommended_items
    from user_metrics
    join {{ ref('holdout_recommendations') }} lists
        on lists.strategy = user_metrics.strategy
        and lists.user_id = user_metrics.user_id
        and lists.rank <= user_metrics.k
    group by all
),

averaged as (
    select
        {{ keys | join(', ') }},
        count(*) as n_users,
        avg(hit) as hit_rate,
        avg(precision) as precision,
        avg(recall) as recall,
        avg(ndcg) as ndcg,
        avg(reciprocal_rank) as mrr,
        avg(diversity) as diversity,
        avg(novelty) as novelty,
        avg(new_interest_hit::integer) filter (where is_new_interest_user) as new_interest_hit_rate,
        count(*) filter (where is_new_interest_user) as n_new_interest_users
    from user_metrics
    group by {{ keys | join(', ') }}
)

select
    {% for c in keys %}averaged.{{ c }}, {% endfor %}
    averaged.n_users,
    averaged.hit_rate,
    averaged.precision,
    averaged.recall,
    averaged.ndcg,
    averaged.mrr,
    coalesce(recommended.n_recommended_items, 0) / catalogue.n_items as coverage,
    averaged.diversity,
    averaged.novelty,
    averaged.new_interest_hit_rate,
    averaged.n_new_interest_users
from averaged
cross join catalogue
left join recommended using ({{ keys | join(', ') }})
{%- endmacro %}
