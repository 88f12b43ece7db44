-- The users a list is built for, per purpose: 'holdout' lists for users with a test event,
-- 'served' lists for every user. n_history and the last item come from features.fit_events.
with splits as (
    select * from {{ ref('event_splits') }}
),

targets as (
    select distinct 'holdout' as purpose, user_id from splits where split = 'test'
    union all
    select distinct 'served' as purpose, user_id from splits
),

histories as (
    select
        purpose,
        user_id,
        count(*) as n_history,
        arg_max(item_id, position) as last_item_id,
        max(event_time) as last_event_time
    from {{ ref('fit_events') }}
    group by purpose, user_id
)

select
    targets.purpose,
    targets.user_id,
    coalesce(histories.n_history, 0) as n_history,
    histories.last_item_id,
    histories.last_event_time
from targets
left join histories using (purpose, user_id)
