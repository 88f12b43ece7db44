-- Under leave_last_out, a user with 3 or more events has exactly one 'test' event (the last)
-- and one 'valid' event (the one before); a user with fewer has neither.
-- Returns the users that break it (no rows under another split rule).
with per_user as (
    select
        user_id,
        count(*) as n_events,
        count(*) filter (where split = 'test') as n_test,
        count(*) filter (where split = 'valid') as n_valid,
        max(position) filter (where split = 'test') as test_position,
        max(position) filter (where split = 'valid') as valid_position
    from {{ ref('event_splits') }}
    group by user_id
)

select *
from per_user
where '{{ var("split_rule", "leave_last_out") }}' = 'leave_last_out'
    and (
        (n_events >= 3 and (n_test <> 1 or n_valid <> 1
            or test_position <> n_events or valid_position <> n_events - 1))
        or (n_events < 3 and (n_test > 0 or n_valid > 0))
    )
