{{ config(materialized='incremental', incremental_strategy='append', full_refresh=False) }}
-- Each user's top genres as they were when a build logged its exploration (the same data
-- watermark as recs.exploration_log), so eval.exploration_outcomes compares a build's probes
-- with the genres that were outside the user's top ones then, not with today's profile (a
-- genre the user took up later would otherwise drop out of the comparison group while the
-- probed genres stay). A build whose watermark is already logged appends nothing.
with watermark as (
    select max(event_time) as data_watermark from {{ ref('events') }}
)

select
    watermark.data_watermark,
    profile.user_id::bigint as user_id,
    profile.interest::varchar as genre
from {{ ref('user_interest_profile') }} as profile
cross join watermark
where profile.interest_type <> 'tag' and profile.is_top
{% if is_incremental() %}
and watermark.data_watermark > (select coalesce(max(data_watermark), '-infinity'::timestamp) from {{ this }})
{% endif %}
