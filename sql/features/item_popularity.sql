-- Item popularity per list purpose, from the events that purpose may learn from
-- (features.fit_events): the baselines' ranking, tie-break and fill. Every catalogue item
-- has a row, so lists rank the full catalogue: items nobody touched come last (n_users 0).
-- novelty_bits = -log2(n_users / users of the purpose), an item nobody touched counting as
-- one user (the most novel): eval.* measures holdout lists' novelty with the 'holdout' rows.
with fit as (
    select * from {{ ref('fit_events') }}
),

items as (
    select item_id from {{ ref('items') }}
),

purposes as (
    select * from (values ('holdout'), ('served')) as purposes(purpose)
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
),

catalogue as (
    select
        purposes.purpose,
        items.item_id,
        coalesce(counted.n_users, 0) as n_users,
        coalesce(counted.n_events, 0) as n_events
    from purposes
    cross join items
    left join counted using (purpose, item_id)
)

select
    catalogue.purpose,
    catalogue.item_id,
    catalogue.n_users,
    catalogue.n_events,
    coalesce(catalogue.n_users / purpose_users.n_purpose_users, 0) as user_share,
    coalesce(-log2(greatest(catalogue.n_users, 1) / purpose_users.n_purpose_users), 0) as novelty_bits,
    row_number() over (
        partition by catalogue.purpose order by catalogue.n_users desc, catalogue.n_events desc, catalogue.item_id
    )::integer as popularity_rank
from catalogue
left join purpose_users using (purpose)
