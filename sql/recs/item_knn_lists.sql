-- item_knn: item-to-item cosine similarity of co-occurrence over users (the neighbours are
-- recs.item_knn_neighbours: each item's var('knn_neighbours') most similar items, counted over
-- each user's last var('knn_max_user_events') events and pairs seen by at least
-- var('knn_min_co_users') users of the purpose's fit events, features.fit_events).
-- A candidate's score is the sum of its similarities to the user's history items; the reason
-- names the most similar history item. Lists shorter than K are filled from the popularity
-- list (score 0, 'popular now').
-- Memory: every large step is a join, a hash aggregate or a window, whose state DuckDB spills
-- to disk beyond the target's memory_limit; aggregates over struct keys (max_by(..., n),
-- arg_max(x, {...})) keep theirs outside that limit, so none runs over the millions of
-- candidate rows of a large log (at 2M events they took the node past the 2 GB limit).
with popularity as (
    select purpose, item_id, popularity_rank from {{ ref('item_popularity') }}
),

popularity_lists as (
    select purpose, user_id, item_id, rank, reason from {{ ref('popularity_lists') }}
),

items as (
    select item_id, title from {{ ref('items') }}
),

-- each item's var('knn_neighbours') most similar items, per purpose (recs.item_knn_neighbours,
-- counted a bucket of items at a time)
neighbours as (
    select purpose, item_id, neighbour_id, similarity from {{ ref('item_knn_neighbours') }}
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
