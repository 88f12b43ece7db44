-- new_in_genre: a cold-start baseline as a careful analyst would write it in SQL: the newest
-- catalogue items in the user's top genres (the is_top genre interests of
-- features.fit_interests, var top_interests of them), newest first, minus the user's history,
-- then popularity fill. "Newest" is the item's arrival as the purpose sees it, with nothing
-- from the test period: the first of its events among the purpose's fit events
-- (features.fit_events), and an item without any such event (in the catalogue, nobody seen
-- with it yet: tonight's new items, or under split_rule new_items the hidden ones) counts as
-- newer than every item with one; among those, without an event to date them, the newest
-- release first (release_year; none last), then the higher item_id (catalogues such as
-- MovieLens number items in the order they add them). score = 1 / the item's place in that
-- order; reason 'new in <genre>', the user's highest-ranked top genre the item carries.
with users as (
    select purpose, user_id, n_history from {{ ref('list_users') }}
),

purposes as (
    select distinct purpose from users
),

items as (
    select item_id, genres, release_year from {{ ref('items') }}
),

history as (
    select purpose, user_id, item_id from {{ ref('fit_events') }}
),

arrivals as (
    select purpose, item_id, min(event_time) as arrived_at
    from {{ ref('fit_events') }}
    group by purpose, item_id
),

catalogue as (
    select
        purposes.purpose,
        items.item_id,
        items.genres,
        row_number() over (
            partition by purposes.purpose
            order by arrivals.arrived_at desc nulls first, items.release_year desc nulls last, items.item_id desc
        ) as newness_rank
    from purposes
    cross join items
    left join arrivals on arrivals.purpose = purposes.purpose and arrivals.item_id = items.item_id
),

genre_items as (
    select purpose, item_id, newness_rank, unnest(genres) as genre
    from catalogue
),

ranked_in_genre as (
    select *, row_number() over (partition by purpose, genre order by newness_rank) as genre_rank
    from genre_items
),

top_genres as (
    select purpose, user_id, interest as genre, rank as genre_order
    from {{ ref('fit_interests') }}
    where interest_type = 'genre' and is_top
),

-- a user's history can push at most n_history items of a genre out of its newest, so
-- length + n_history per genre always leave enough after the exclusion
candidates as (
    select users.purpose, users.user_id, ranked_in_genre.item_id, ranked_in_genre.newness_rank,
           top_genres.genre, top_genres.genre_order
    from users
    join top_genres using (purpose, user_id)
    join ranked_in_genre
        on ranked_in_genre.purpose = users.purpose
        and ranked_in_genre.genre = top_genres.genre
        and ranked_in_genre.genre_rank <= {{ list_length('users.purpose') }} + users.n_history
),

unseen as (
    select candidates.*
    from candidates
    anti join history using (purpose, user_id, item_id)
),

per_item as (
    select purpose, user_id, item_id, newness_rank, arg_min(genre, genre_order) as genre
    from unseen
    group by purpose, user_id, item_id, newness_rank
),

top_scored as (
    select
        purpose,
        user_id,
        item_id,
        1.0 / newness_rank as score,
        'new in ' || genre as reason,
        1 as source_order,
        row_number() over (partition by purpose, user_id order by newness_rank) as source_rank
    from per_item
    qualify source_rank <= {{ list_length('purpose') }}
),

popularity_lists as (
    select purpose, user_id, item_id, rank, reason from {{ ref('popularity_lists') }}
),

lists as (
    {{ fill_from_popularity('new_in_genre', 'top_scored', 'popularity_lists') }}
)

select * from lists
