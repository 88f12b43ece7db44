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
