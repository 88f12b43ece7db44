{{ config(materialized='view') }}
-- The served lists as a dashboard shows them: titles in natural order, genres as text, a
-- reason in plain words, and a score that means the same for every strategy (the chance,
-- measured on the holdout lists, that an item at this rank is the user's next watch:
-- eval.rank_calibration). recs.recommendations keeps the technical score and reason.
with recommendations as (
    select * from {{ ref('recommendations') }}
),

calibration as (
    select strategy, rank, hit_probability from {{ ref('rank_calibration') }}
),

items as (
    select
        item_id,
        {{ natural_title('title') }} as title,
        release_year,
        genres,
        title as catalogue_title
    from {{ ref('items') }}
),

-- the served lists are built from every event of the user
history as (
    select distinct events.user_id, items.*
    from {{ ref('events') }} events
    join items using (item_id)
),

watched_genres as (
    select distinct user_id, unnest(genres) as genre from history
),

parsed as (
    select
        recommendations.*,
        regexp_extract(reason, '^(after|like) (.+)$', 1) as reason_kind,
        regexp_extract(reason, '^(after|like) (.+)$', 2) as reason_title,
        regexp_extract(reason, '^explore (.+) \(mean [^()]*\)$', 1) as probed_genre
    from recommendations
),

-- the history item a reason names ("after <title>", "like <title>"): found by its title among
-- the user's own events; a title shared by two of them takes the lower item_id
reason_items as (
    select parsed.strategy, parsed.user_id, parsed.rank, history.title, history.release_year
    from parsed
    join history on history.user_id = parsed.user_id and history.catalogue_title = parsed.reason_title
    qualify row_number() over (partition by parsed.strategy, parsed.user_id, parsed.rank
                               order by history.item_id) = 1
)

select
    parsed.strategy,
    parsed.user_id,
    parsed.rank,
    parsed.item_id,
    items.title,
    items.release_year,
    array_to_string(items.genres, ', ') as genres,
    case
        when reason_items.title is not null then
            case
                when parsed.strategy = 'item_knn' and parsed.reason_kind = 'like'
                    then 'Viewers of ' || reason_items.title || coalesce(' (' || reason_items.release_year || ')', '')
                         || ' also watched this'
                else 'Because you watched ' || reason_items.title || coalesce(' (' || reason_items.release_year || ')', '')
            end
        when parsed.probed_genre <> '' and watched_genres.genre is null
            then 'Something different: ' || parsed.probed_genre || ', a genre you have not watched yet'
        when parsed.probed_genre <> ''
            then 'Something different: ' || parsed.probed_genre || ', outside the genres you watch most'
        when parsed.reason = 'popular now' then 'Popular: one of the most watched titles'
        else parsed.reason
    end as reason,
    calibration.hit_probability as score,
    parsed.is_exploration
from parsed
join items using (item_id)
left join reason_items using (strategy, user_id, rank)
left join watched_genres on watched_genres.user_id = parsed.user_id and watched_genres.genre = parsed.probed_genre
left join calibration using (strategy, rank)
