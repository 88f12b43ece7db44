-- Per catalogue item, from all cleaned events. Audience, popularity rank and novelty are
-- features.item_popularity's 'served' rows (the purpose that learns from every event), so the
-- formulas live once; items nobody interacted with are kept there (n_users = 0) with the
-- novelty of an item seen by one user, the largest there is. Only the mean value is added here.
with popularity as (
    select item_id, n_users, n_events, popularity_rank, novelty_bits
    from {{ ref('item_popularity') }}
    where purpose = 'served'
),

events as (
    select * from {{ ref('events') }}
),

mean_values as (
    select item_id, avg(value) as mean_value
    from events
    group by item_id
)

select
    popularity.item_id,
    popularity.n_users,
    popularity.n_events,
    mean_values.mean_value,
    popularity.popularity_rank,
    popularity.novelty_bits
from popularity
left join mean_values using (item_id)
