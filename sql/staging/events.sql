-- Cleaned interactions: one row per kept (user, item, time) event.
-- No event at all is an error, not an empty warehouse: every later table would be empty and
-- every metric null, which is harder to trace back to the seed file than this message.
with checked as (
    select * from {{ ref('ratings_checked') }}
),

kept as (
    select user_id, item_id, raw_timestamp, value
    from checked
    where rejection_reason is null
),

emptiness_check as (
    select
        case
            when count(*) filter (where rejection_reason is null) = 0 then error(
                'staging.events: no usable events: raw.ratings has ' || count(*) || ' rows'
                || case when count(*) > 0 then ', all rejected (see staging.rejected_events)' else '' end
                || '. Check the ratings seed file (seeds.ratings.+file in project.yml) and the vars '
                || 'value_column, value_min, value_max.'
            )
        end as failure
    from checked
)

select
    kept.user_id::bigint as user_id,
    kept.item_id::bigint as item_id,
    make_timestamp(kept.raw_timestamp * 1000000) as event_time,
    kept.value::double as value
from kept

-- never returns a row: evaluating the check is what raises the error above
union all
select null, null, null, null
from emptiness_check
where failure is not null
