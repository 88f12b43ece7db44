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
  list fills the rest up to list_length(purpose), so every list is that long when the
  catalogue allows.
  Call it right after the CTE `top_scored`, inside the same `with`:
    ..., top_scored as (...)
    {{ fill_from_popularity('markov') }}
  The caller's file must also name {{ ref('popularity_lists') }} (a comment is enough) for the DAG.
#}
{% macro fill_from_popularity(strategy) -%}
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
    qualify rank <= {{ list_length('purpose') }}
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



{#
  How long a purpose's lists are: 'served' lists (recs.recommendations) var('k'), 'holdout'
  lists (eval.*) max(var('ks')), so every K measured has a full list. `purpose` is the SQL
  expression that holds the purpose; max_list_length() is the longer of the two.
#}
{% macro list_length(purpose) -%}
(case when {{ purpose }} = 'served' then {{ var('k', 10) | int }} else {{ var('ks', [10]) | max | int }} end)
{%- endmacro %}

{% macro max_list_length() -%}
{{ [var('k', 10) | int, var('ks', [10]) | max | int] | max }}
{%- endmacro %}
