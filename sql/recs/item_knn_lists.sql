-- item_knn: item-to-item cosine similarity of co-occurrence over users,
--   sim(i, j) = n_users(i and j) / sqrt(n_users(i) * n_users(j)),
-- over each user's last var('knn_max_user_events') events and pairs seen by at least
-- var('knn_min_co_users') users, each item keeping its var('knn_neighbours') most similar items.
-- A candidate's score is the sum of its similarities to the user's history items; the reason
-- names the most similar history item. Lists shorter than K are filled from the popularity
-- list (score 0, 'popular now').
-- One self-join serves both purposes: each purpose counts the pairs of its own fit events
-- (features.fit_events), each user's window of recent items cut from those events, so the
-- 'holdout' neighbours never count a test event, not even through the window.
-- Memory: every large step is a join, a hash aggregate or a window, whose state DuckDB spills
-- to disk beyond the target's memory_limit; aggregates over struct keys (max_by(..., n),
-- arg_max(x, {...})) keep theirs outside that limit, so none runs over the millions of pair or
-- candidate rows of a large log (at 2M events they took the node past the 2 GB limit).
{% set neighbours = var('knn_neighbours', 20) %}
{% set max_user_events = var('knn_max_user_events', 200) %}
{% set min_co_users = var('knn_min_co_users', 3) %}
with popularity as (
    select purpose, item_id, popularity_rank from {{ ref('item_popularity') }}
),

popularity_lists as (
    select purpose, user_id, item_id, rank, reason from {{ ref('popularity_lists') }}
),

user_items as (
    -- one row per purpose, user and item (an item rated twice counts once)
    select purpose, user_id, item_id, max(position) as last_position
    from {{ ref('fit_events') }}
    group by purpose, user_id, item_id
),

{% if max_user_events is not none %}
user_sizes as (
    select purpose, user_id, count(*) as n_items from user_items group by purpose, user_id
),
{% endif %}

fit_items as (
    {% if max_user_events is not none %}
    -- heavy users would dominate the pair count (a user with n items makes n^2/2 pairs):
    -- only each user's most recent items count, as Mahout's maxPrefsPerUser does. Only the
    -- heavy users' rows go through the window (4M of 20M rows at 10M events): a window over
    -- every row ran out of a 1.28 GB memory_limit there, while the split needs 0.1 GB.
    select user_items.*
    from user_items
    join user_sizes using (purpose, user_id)
    where user_sizes.n_items <= {{ max_user_events }}
    union all
    select user_items.*
    from user_items
    join user_sizes using (purpose, user_id)
    where user_sizes.n_items > {{ max_user_events }}
    qualify row_number() over (partition by purpose, user_id order by last_position desc) <= {{ max_user_events }}
    {% else %}
    select * from user_items
    {% endif %}
),

events as materialized (
    select
        user_id,
        item_id,
        bool_or(purpose = 'served') as in_served,
        bool_or(purpose = 'holdout') as in_holdout
    from fit_items
    group by user_id, item_id
),

items as (
    select item_id, title from {{ ref('items') }}
),

item_users as materialized (
    select
        item_id,
        count(*) filter (where in_served) as n_served,
        count(*) filter (where in_holdout) as n_holdout
    from events
    group by item_id
),

-- a pair seen by fewer than var('knn_min_co_users') users is noise (and most of the pairs);
-- neither of its items can be in such a pair unless it has that many users itself
frequent_events as (
    select events.*
    from events
    join item_users using (item_id)
    where (events.in_served and item_users.n_served >= {{ min_co_users }})
        or (events.in_holdout and item_users.n_holdout >= {{ min_co_users }})
),

pair_counts as (
    select
        a.item_id as item_a,
        b.item_id as item_b,
        count(*) filter (where a.in_served and b.in_served) as n_served,
        count(*) filter (where a.in_holdout and b.in_holdout) as n_holdout
    from frequent_events a
    join frequent_events b on a.user_id = b.user_id and a.item_id < b.item_id
    group by a.item_id, b.item_id
    having n_served >= {{ min_co_users }} or n_holdout >= {{ min_co_users }}
),

pair_similarity as (
    select
        pair_counts.item_a,
        pair_counts.item_b,
        -- each purpose's count must pass the threshold on its own, or test events would choose pairs
        case
            when pair_counts.n_served >= {{ min_co_users }}
                then pair_counts.n_served / sqrt(ua.n_served * ub.n_served)
        end as served_similarity,
        case
            when pair_counts.n_holdout >= {{ min_co_users }}
                then pair_counts.n_holdout / sqrt(ua.n_holdout * ub.n_holdout)
        end as holdout_similarity
    from pair_counts
    join item_users ua on ua.item_id = pair_counts.item_a
    join item_users ub on ub.item_id = pair_counts.item_b
),

symmetric_similarity as (
    select item_a as item_id, item_b as neighbour_id, served_similarity, holdout_similarity
    from pair_similarity
    union all
    select item_b as item_id, item_a as neighbour_id, served_similarity, holdout_similarity
    from pair_similarity
),

-- each item's var('knn_neighbours') most similar items, per purpose (a window: max_by(..., n)
-- over a struct key held 0.9 GB outside the memory_limit at 2M events)
neighbours as materialized (
    select purpose, item_id, neighbour_id, similarity
    from (
        select 'served' as purpose, item_id, neighbour_id, served_similarity as similarity
        from symmetric_similarity
        union all
        select 'holdout' as purpose, item_id, neighbour_id, holdout_similarity as similarity
        from symmetric_similarity
    )
    where similarity > 0
    -- ties broken by the smaller item id, so the same data always keeps the same neighbours
    qualify row_number() over (partition by purpose, item_id order by similarity desc, neighbour_id) <= {{ neighbours }}
),

users as (
    select purpose, user_id from {{ ref('list_users') }}
),

history as materialized (
    select fit.purpose, fit.user_id, fit.item_id
    from {{ ref('fit_events') }} fit
    semi join users using (purpose, user_id)
),

-- one row per user and candidate (33M at 2M events): this aggregate and the ranking below carry
-- ids and scores only; the reason is found for the kept candidates alone (closest_history)
scored as (
    select
        history.purpose,
        history.user_id,
        neighbours.neighbour_id as item_id,
        -- rounded: a parallel float sum differs in the last bits from run to run and would swap ties
        round(sum(neighbours.similarity), 9) as score
    from history
    join neighbours on neighbours.purpose = history.purpose and neighbours.item_id = history.item_id
    group by history.purpose, history.user_id, neighbours.neighbour_id
),

-- a list never repeats an item of the user's history
unseen as (
    select scored.*
    from scored
    anti join history using (purpose, user_id, item_id)
),

-- each list's top candidates: by score, ties by popularity
top_candidates as materialized (
    select
        unseen.purpose,
        unseen.user_id,
        unseen.item_id,
        unseen.score,
        row_number() over (
            partition by unseen.purpose, unseen.user_id order by unseen.score desc, popularity.popularity_rank
        ) as source_rank
    from unseen
    join popularity
        on popularity.purpose = unseen.purpose and popularity.item_id = unseen.item_id
    qualify source_rank <= {{ list_length('unseen.purpose') }}
),

-- the reason names the kept candidate's most similar history item (ties: the smaller item id).
-- Every history item is in staging.items (staging rejects unknown items), so the join to items
-- below drops no kept candidate.
closest_history as (
    select
        history.purpose,
        history.user_id,
        neighbours.neighbour_id as item_id,
        history.item_id as closest_history_item
    from history
    join neighbours on neighbours.purpose = history.purpose and neighbours.item_id = history.item_id
    semi join top_candidates
        on top_candidates.purpose = history.purpose
        and top_candidates.user_id = history.user_id
        and top_candidates.item_id = neighbours.neighbour_id
    qualify row_number() over (
        partition by history.purpose, history.user_id, neighbours.neighbour_id
        order by neighbours.similarity desc, history.item_id
    ) = 1
),

top_scored as (
    select
        top_candidates.purpose,
        top_candidates.user_id,
        top_candidates.item_id,
        top_candidates.score,
        'like ' || items.title as reason,
        1 as source_order,
        top_candidates.source_rank
    from top_candidates
    join closest_history using (purpose, user_id, item_id)
    join items on items.item_id = closest_history.closest_history_item
),

lists as (
    {{ fill_from_popularity('item_knn', 'top_scored', 'popularity_lists') }}
)

select * from lists
