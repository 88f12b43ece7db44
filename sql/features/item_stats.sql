-- Per catalogue item, from all cleaned events. Items nobody interacted with are kept
-- (n_users = 0) and get the novelty of an item seen by one user, the largest there is.
with events as (
    select * from {{ ref('events') }}
),

items as (
    select item_id from {{ ref('items') }}
),

counted as (
    select item_id, count(distinct user_id) as n_users, count(*) as n_events, avg(value) as mean_value
    from events
    group by item_id
),

all_users as (
    select count(distinct user_id) as n_all_users from events
)

select
    items.item_id,
    coalesce(counted.n_users, 0) as n_users,
    coalesce(counted.n_events, 0) as n_events,
    counted.mean_value,
    row_number() over (
        order by coalesce(counted.n_users, 0) desc, coalesce(counted.n_events, 0) desc, items.item_id
    )::integer as popularity_rank,
    -log2(greatest(coalesce(counted.n_users, 0), 1) / all_users.n_all_users) as novelty_bits
from items
cross join all_users
left join counted using (item_id)
