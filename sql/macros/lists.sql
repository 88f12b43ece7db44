{#
  The rows of one purpose ('served' or 'holdout') from each strategy's list model, in the
  public list columns. Call it with literal refs so the DAG sees them:
    {{ union_lists([ref('popularity_lists'), ref('item_knn_lists')], 'served') }}
  A new strategy is one more ref in that list.
#}
{% macro union_lists(list_models, purpose) -%}
{%- for list_model in list_models %}
select
    strategy::varchar as strategy,
    user_id::bigint as user_id,
    rank::integer as rank,
    item_id::bigint as item_id,
    score::double as score,
    is_exploration::boolean as is_exploration,
    reason::varchar as reason
from {{ list_model }}
where purpose = '{{ purpose }}'
{%- if not loop.last %}
union all
{%- endif %}
{%- endfor %}
{%- endmacro %}


{#
  The end of a baseline's list query: its scored items (CTE `top_scored`: purpose, user_id,
  item_id, score, reason, source_order = 1, source_rank) first, then the purpose's popularity
  list fills the rest up to k, so every list is k long when the catalogue allows.
  Call it right after the CTE `top_scored`, inside the same `with`:
    ..., top_scored as (...)
    {{ fill_from_popularity('markov', k) }}
  The caller's file must also name {{ ref('popularity_lists') }} (a comment is enough) for the DAG.
#}
{% macro fill_from_popularity(strategy, k) -%}
,

popular_fill as (
    select purpose, user_id, item_id, 0.0 as score, reason, 2 as source_order, rank as source_rank
    from {{ ref('popularity_lists') }}
    anti join top_scored using (purpose, user_id, item_id)
),

ranked as (
    select
        *,
        row_number() over (partition by purpose, user_id order by source_order, source_rank) as rank
    from (select * from top_scored union all select * from popular_fill)
    qualify rank <= {{ k }}
)

select
    purpose,
    '{{ strategy }}' as strategy,
    user_id,
    rank::integer as rank,
    item_id,
    score::double as score,
    false as is_exploration,
    reason
from ranked
{%- endmacro %}
