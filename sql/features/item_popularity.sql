-- Item popularity per list purpose, from the events that purpose may learn from
-- (features.fit_events): the baselines' ranking, tie-break and fill.
with fit as (
    select * from {{ ref('fit_events') }}
),

counted as (
    select purpose, item_id, count(distinct user_id) as n_users, count(*) as n_events
    from fit
    group by purpose, item_id
),

purpose_users as (
    select purpose, count(distinct user_id) as n_purpose_users
    from fit
    group by purpose
)

select
    counted.purpose,
    counted.item_id,
    counted.n_users,
    counted.n_events,
    counted.n_users / purpose_users.n_purpose_users as user_share,
    row_number() over (
        partition by counted.purpose order by counted.n_users desc, counted.n_events desc, counted.item_id
    )::integer as popularity_rank
from counted
join purpose_users using (purpose)
