-- item_knn: item-to-item cosine similarity of co-occurrence over users,
--   sim(i, j) = n_users(i and j) / sqrt(n_users(i) * n_users(j)),
-- each item keeping its var('knn_neighbours') most similar items; a candidate's score is the
-- sum of its similarities to the user's history items. Lists shorter than K are filled from
-- the popularity list (score 0, 'popular now').
-- One self-join serves both purposes: a pair counts for 'served' always and for 'holdout'
-- only when neither event is in the test split (the 'holdout' fit events, features.fit_events).
{% set k = var('ks', [10]) | max %}
{% set neighbours = var('knn_neighbours', 50) %}
with events as (
    select user_id, item_id, split = 'test' as is_test from {{ ref('event_splits') }}
),

items as (
    select item_id, title from {{ ref('items') }}
),

item_users as (
    select
        item_id,
        count(distinct user_id) as n_served,
        count(distinct user_id) filter (where not is_test) as n_holdout
    from events
    group by item_id
),

pair_counts as (
    select
        a.item_id as item_a,
        b.item_id as item_b,
        count(*) as n_served,
        count(*) filter (where not a.is_test and not b.is_test) as n_holdout
    from events a
    join events b on a.user_id = b.user_id and a.item_id < b.item_id
    group by a.item_id, b.item_id
),

pair_similarity as (
    select
        purpose,
        pair_counts.item_a,
        pair_counts.item_b,
        case purpose
            when 'served' then pair_counts.n_served / sqrt(ua.n_served * ub.n_served)
            else pair_counts.n_holdout / sqrt(ua.n_holdout * ub.n_holdout)
        end as similarity
    from pair_counts
    join item_users ua on ua.item_id = pair_counts.item_a
    join item_users ub on ub.item_id = pair_counts.item_b
    cross join (values ('served'), ('holdout')) as purposes(purpose)
    where (purpose = 'served' and pair_counts.n_served > 0)
        or (purpose = 'holdout' and pair_counts.n_holdout > 0)
),

symmetric_similarity as (
    select purpose, item_a as item_id, item_b as neighbour_id, similarity from pair_similarity
    union all
    select purpose, item_b as item_id, item_a as neighbour_id, similarity from pair_similarity
),

neighbours as (
    select *
    from symmetric_similarity
    qualify row_number() over (
        partition by purpose, item_id order by similarity desc, neighbour_id
    ) <= {{ neighbours }}
),

users as (
    select purpose, user_id from {{ ref('list_users') }}
),

history as (
    select fit.purpose, fit.user_id, fit.item_id
    from {{ ref('fit_events') }} fit
    semi join users using (purpose, user_id)
),

scored as (
    select
        history.purpose,
        history.user_id,
        neighbours.neighbour_id as item_id,
        sum(neighbours.similarity) as score,
        arg_max(history.item_id, neighbours.similarity) as closest_history_item
    from history
    join neighbours on neighbours.purpose = history.purpose and neighbours.item_id = history.item_id
    group by history.purpose, history.user_id, neighbours.neighbour_id
),

unseen as (
    select scored.*
    from scored
    anti join history using (purpose, user_id, item_id)
),

top_scored as (
    select
        unseen.purpose,
        unseen.user_id,
        unseen.item_id,
        unseen.score,
        'like ' || items.title as reason,
        1 as source_order,
        row_number() over (
            partition by unseen.purpose, unseen.user_id order by unseen.score desc, popularity.popularity_rank
        ) as source_rank
    from unseen
    join items on items.item_id = unseen.closest_history_item
    join {{ ref('item_popularity') }} popularity
        on popularity.purpose = unseen.purpose and popularity.item_id = unseen.item_id
    qualify source_rank <= {{ k }}
),

popular_fill as (
    select purpose, user_id, item_id, 0.0 as score, reason, 2 as source_order, rank as source_rank
    from {{ ref('popularity_lists') }}
    anti join top_scored using (purpose, user_id, item_id)
),

ranked as (
    select
        *,
        row_number() over (partition by purpose, user_id order by source_order, source_rank) as rank
    from (select * from top_scored union all select * from popular_fill)
    qualify rank <= {{ k }}
)

select
    purpose,
    'item_knn' as strategy,
    user_id,
    rank::integer as rank,
    item_id,
    score::double as score,
    false as is_exploration,
    reason
from ranked
