-- markov: first-order transitions between consecutive events of a user's sequence (ordered
-- by position, features.event_splits), counted over the purpose's fit events. A user's
-- candidates are the items that followed their last history item, scored by the transition
-- probability P(next | last); popularity breaks ties and fills the list to K.
with popularity as (
    select purpose, item_id, popularity_rank from {{ ref('item_popularity') }}
),

popularity_lists as (
    select purpose, user_id, item_id, rank, reason from {{ ref('popularity_lists') }}
),

fit as (
    select purpose, user_id, item_id, position from {{ ref('fit_events') }}
),

items as (
    select item_id, title from {{ ref('items') }}
),

steps as (
    select
        purpose,
        lag(item_id) over (partition by purpose, user_id order by position) as previous_item_id,
        item_id
    from fit
),

transitions as (
    select
        purpose,
        previous_item_id,
        item_id,
        count(*) / sum(count(*)) over (partition by purpose, previous_item_id) as probability
    from steps
    where previous_item_id is not null
    group by purpose, previous_item_id, item_id
),

users as (
    select purpose, user_id, last_item_id from {{ ref('list_users') }}
),

candidates as (
    select users.purpose, users.user_id, transitions.item_id, transitions.probability, users.last_item_id
    from users
    join transitions
        on transitions.purpose = users.purpose and transitions.previous_item_id = users.last_item_id
),

unseen as (
    select candidates.*
    from candidates
    anti join fit using (purpose, user_id, item_id)
),

top_scored as (
    select
        unseen.purpose,
        unseen.user_id,
        unseen.item_id,
        unseen.probability as score,
        'after ' || items.title as reason,
        1 as source_order,
        row_number() over (
            partition by unseen.purpose, unseen.user_id
            order by unseen.probability desc, popularity.popularity_rank
        ) as source_rank
    from unseen
    join items on items.item_id = unseen.last_item_id
    join popularity
        on popularity.purpose = unseen.purpose and popularity.item_id = unseen.item_id
    qualify source_rank <= {{ list_length('unseen.purpose') }}
),

lists as (
    {{ fill_from_popularity('markov', 'top_scored', 'popularity_lists') }}
)

select * from lists
