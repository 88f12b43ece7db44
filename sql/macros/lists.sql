{#
  The public list columns (recs.recommendations, eval.holdout_recommendations) of the rows
  of one purpose ('served' or 'holdout') of `lists`, a relation or CTE with every
  strategy's lists (recs/strategy_lists.sql). Columns that only some strategies log
  (lm_explore's probed_interest and propensity) are NULL for the others.
#}
{% macro public_list_columns(lists, purpose) -%}
select
    strategy::varchar as strategy,
    user_id::bigint as user_id,
    rank::integer as rank,
    item_id::bigint as item_id,
    score::double as score,
    is_exploration::boolean as is_exploration,
    reason::varchar as reason,
    probed_interest::varchar as probed_interest,
    propensity::double as propensity
from {{ lists }}
where purpose = '{{ purpose }}'
{%- endmacro %}


{#
  A baseline's lists filled from popularity: the rows of `scored` (a relation or CTE with
  purpose, user_id, item_id, score, reason, source_order = 1, source_rank) first, then the
  rows of `popularity_lists` (recs.popularity_lists, or a CTE over it) the user does not
  have yet, up to list_length(purpose), so every list is that long when the catalogue
  allows. Returns one query in the list columns, to use as a CTE's body:
    lists as (
        {{ fill_from_popularity('markov', 'top_scored', 'popularity_lists') }}
    )
#}
{% macro fill_from_popularity(strategy, scored, popularity_lists) -%}
with popular_fill as (
    select purpose, user_id, item_id, 0.0 as score, reason, 2 as source_order, rank as source_rank
    from {{ popularity_lists }}
    anti join {{ scored }} using (purpose, user_id, item_id)
),

ranked as (
    select
        *,
        row_number() over (partition by purpose, user_id order by source_order, source_rank) as rank
    from (select * from {{ scored }} union all select * from popular_fill)
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


{#
  A scored strategy's lists: the candidates of `scores` (a relation with purpose, user_id,
  item_id, score, source_rank and closest_history_item, e.g. recs.item_knn_scores), each
  with the reason "like <the closest history item's title>", filled from popularity
  (fill_from_popularity). Every history item is in staging.items (staging rejects unknown
  items), so the join to the titles drops no candidate. Returns one query in the list columns.
#}
{% macro like_history_lists(strategy, scores) -%}
with popularity_lists as (
    select purpose, user_id, item_id, rank, reason from {{ ref('popularity_lists') }}
),

items as (
    select item_id, title from {{ ref('items') }}
),

top_scored as (
    select
        scores.purpose,
        scores.user_id,
        scores.item_id,
        scores.score,
        'like ' || items.title as reason,
        1 as source_order,
        scores.source_rank
    from {{ scores }} scores
    join items on items.item_id = scores.closest_history_item
),

lists as (
    {{ fill_from_popularity(strategy, 'top_scored', 'popularity_lists') }}
)

select * from lists
{%- endmacro %}
