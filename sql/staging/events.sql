-- Cleaned interactions: one row per kept (user, item, time) event.
-- An empty result is an error, not an empty warehouse: every later table would be empty
-- and every metric null, which is harder to diagnose than this message.
with kept as (
    select user_id, item_id, raw_timestamp, value
    from {{ ref('ratings_checked') }}
    where rejection_reason is null
),

row_count_check as (
    select
        case
            when count(*) = 0 then error(
                'staging.events: no usable events. raw.ratings has '
                || (select count(*) from {{ ref('ratings') }})
                || ' rows and every one was rejected or the file is empty; '
                || 'see staging.rejected_events and the ratings seed file in project.yml'
            )
        end as failure
    from kept
)

select
    kept.user_id::bigint as user_id,
    kept.item_id::bigint as item_id,
    make_timestamp(kept.raw_timestamp * 1000000) as event_time,
    kept.value::double as value
from kept
cross join row_count_check
