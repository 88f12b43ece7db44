{{ config(materialized='incremental', incremental_strategy='append', full_refresh=False) }}
-- The served slots of lm and lm_explore on items that open a new interest for the user
-- (recs.lm_candidate_interests), logged once per data watermark (the newest event time the
-- build saw), so that later builds can see what exploring taught: lm_explore's exploration
-- slots and the new-interest items both lists show anyway, with lm_explore's propensity
-- (lm is deterministic: 1.0). eval.exploration_outcomes and features.user_interests.confirmed_at
-- read it; a build whose watermark is already logged appends nothing.
with watermark as (
    select max(event_time) as data_watermark from {{ ref('events') }}
),

new_interest as (
    select user_id, item_id, probed_interest from {{ ref('lm_candidate_interests') }}
    where purpose = 'served' and is_new_interest
),

served as (
    select 'lm_explore' as strategy, user_id, rank, item_id, is_exploration, propensity
    from {{ ref('lm_explore_lists') }}
    where purpose = 'served'
    union all
    select 'lm' as strategy, user_id, rank, item_id, false as is_exploration, 1.0 as propensity
    from {{ ref('lm_lists') }}
    where purpose = 'served'
)

select
    watermark.data_watermark,
    served.strategy::varchar as strategy,
    served.user_id::bigint as user_id,
    served.rank::integer as rank,
    served.item_id::bigint as item_id,
    served.is_exploration::boolean as is_exploration,
    new_interest.probed_interest::varchar as probed_interest,
    served.propensity::double as propensity
from served
join new_interest using (user_id, item_id)
cross join watermark
{% if is_incremental() %}
where watermark.data_watermark > (select coalesce(max(data_watermark), '-infinity'::timestamp) from {{ this }})
{% endif %}
