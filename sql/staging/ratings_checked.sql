{{ config(materialized='view') }}
-- Every raw rating row with the reason it is rejected (null when it is kept).
-- staging.events keeps the null-reason rows; staging.rejected_events counts the rest,
-- so nothing leaves the pipeline silently. The first failing check names the reason.
with ratings as (
    select
        "userId" as user_id,
        "movieId" as item_id,
        "timestamp" as raw_timestamp,
        try_cast("{{ var('value_column', 'rating') }}" as double) as value
    from {{ ref('ratings') }}
),

known_items as (
    select item_id from {{ ref('items') }}
),

checked as (
    select
        ratings.user_id,
        ratings.item_id,
        ratings.raw_timestamp,
        ratings.value,
        case
            when ratings.user_id is null then 'null_user_id'
            when ratings.item_id is null then 'null_item_id'
            when ratings.raw_timestamp is null then 'null_event_time'
            when ratings.value is null then 'null_value'
            when ratings.value < {{ var('value_min', 0.5) }} or ratings.value > {{ var('value_max', 5.0) }}
                then 'value_out_of_range'
            when known_items.item_id is null then 'unknown_item'
        end as failed_check
    from ratings
    left join known_items on known_items.item_id = ratings.item_id
),

-- copies of one (user, item, time) event: the highest value is kept, every other copy is
-- rejected, as 'duplicate' when it is exact and 'conflicting_duplicate' when its value differs
numbered as (
    select
        *,
        row_number() over (
            partition by failed_check, user_id, item_id, raw_timestamp order by value desc
        ) as copy_number,
        max(value) over (partition by failed_check, user_id, item_id, raw_timestamp) as kept_value
    from checked
)

select
    user_id,
    item_id,
    raw_timestamp,
    value,
    case
        when failed_check is not null then failed_check
        when copy_number > 1 and value = kept_value then 'duplicate'
        when copy_number > 1 then 'conflicting_duplicate'
    end as rejection_reason
from numbered
