{{ config(materialized='view') }}
-- The served lists as a dashboard shows them: titles in natural order, genres as text, a
-- reason in plain words, and a score that means the same for every strategy (the chance,
-- measured on the holdout lists, that an item at this rank is the user's next watch:
-- eval.rank_calibration, made non-increasing in rank so that sorting by score keeps each
-- list's order). recs.recommendations keeps the technical score and reason.
with recommendations as (
    select * from {{ ref('recommendations') }}
),

calibration as (
    select strategy, rank, isotonic_hit_probability as score from {{ ref('rank_calibration') }}
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

-- "rated highly": the user's value for the item is at least their own mean value and above the
-- middle of the value range (vars value_min, value_max)
ratings as (
    select
        user_id,
        item_id,
        max(value) as value,
        avg(max(value)) over (partition by user_id) as user_mean_value
    from {{ ref('events') }}
    group by user_id, item_id
),

-- what an item is about, in words: its genres and tags (staging.item_tags), lower case, the
-- rarest in the catalogue first (then by name): the rarer a trait, the more it says about
-- what two items share. One list per item, so matching two items joins on item_id only.
item_traits as (
    select distinct item_id, trait
    from (
        select item_id, lower(unnest(genres)) as trait from {{ ref('items') }}
        union all
        select item_id, tag as trait from {{ ref('item_tags') }}
    )
),

trait_rarity as (
    select trait, count(*) as n_items from item_traits group by trait
),

item_trait_lists as (
    select item_id, list(trait order by trait_rarity.n_items, trait) as traits
    from item_traits
    join trait_rarity using (trait)
    group by item_id
),

parsed as (
    select
        recommendations.*,
        regexp_extract(reason, '^(after|like) (.+)$', 1) as reason_kind,
        regexp_extract(reason, '^(after|like) (.+)$', 2) as reason_title,
        regexp_extract(reason, '^explore (.+) \(mean [^()]*\)$', 1) as probed_genre,
        regexp_extract(reason, '^new in (.+)$', 1) as new_genre
    from recommendations
),

-- the history item a reason names ("after <title>", "like <title>"): found by its title among
-- the user's own events; a title shared by two of them takes the lower item_id
reason_items as (
    select parsed.strategy, parsed.user_id, parsed.rank, history.item_id as reason_item_id, history.title,
           history.release_year
    from parsed
    join history on history.user_id = parsed.user_id and history.catalogue_title = parsed.reason_title
    qualify row_number() over (partition by parsed.strategy, parsed.user_id, parsed.rank
                               order by history.item_id) = 1
),

-- what the recommended item and the history item a reason names have in common: at most 3
-- traits both carry, the rarest first
shared_traits as (
    select
        reason_items.strategy,
        reason_items.user_id,
        reason_items.rank,
        nullif(array_to_string(list_filter(recommended.traits, lambda t: list_contains(named.traits, t))[1:3], ', '), '')
            as traits
    from reason_items
    join parsed using (strategy, user_id, rank)
    join item_trait_lists recommended on recommended.item_id = parsed.item_id
    join item_trait_lists named on named.item_id = reason_items.reason_item_id
),

-- each strategy's own reason for its slot, in plain words
explained as (
    select
        parsed.strategy,
        parsed.user_id,
        parsed.rank,
        parsed.item_id,
        case
            when shared_traits.traits is not null then
                'Like ' || reason_items.title || coalesce(' (' || reason_items.release_year || ')', '')
                || case
                       when ratings.value >= ratings.user_mean_value
                           and ratings.value > ({{ var('value_min', 0.5) }} + {{ var('value_max', 5.0) }}) / 2
                           then ', which you rated highly: '
                       else ', which you watched: '
                   end
                || shared_traits.traits
            when reason_items.title is not null then
                case
                    when parsed.strategy = 'item_knn' and parsed.reason_kind = 'like'
                        then 'Viewers of ' || reason_items.title || coalesce(' (' || reason_items.release_year || ')', '')
                             || ' also watched this'
                    else 'Because you watched ' || reason_items.title
                         || coalesce(' (' || reason_items.release_year || ')', '')
                end
            when parsed.probed_genre <> '' and watched_genres.genre is null
                then 'Something different: ' || parsed.probed_genre || ', a genre you have not watched yet'
            when parsed.probed_genre <> ''
                then 'Something different: ' || parsed.probed_genre || ', outside the genres you watch most'
            when parsed.reason = 'popular now' then 'Popular: one of the most watched titles'
            when parsed.new_genre <> '' then 'New in ' || parsed.new_genre || ', one of the genres you watch most'
            else parsed.reason
        end as own_reason,
        -- how specific the reason is: one naming the user's own history and what it shares with
        -- the item, one naming the history item only, an exploration's or a new item's, a generic one
        case
            when shared_traits.traits is not null then 1
            when reason_items.title is not null then 2
            when parsed.probed_genre <> '' or parsed.new_genre <> '' then 3
            else 4
        end as reason_specificity,
        calibration.score,
        parsed.is_exploration
    from parsed
    left join reason_items using (strategy, user_id, rank)
    left join shared_traits using (strategy, user_id, rank)
    left join ratings on ratings.user_id = parsed.user_id and ratings.item_id = reason_items.reason_item_id
    left join watched_genres on watched_genres.user_id = parsed.user_id and watched_genres.genre = parsed.probed_genre
    left join calibration using (strategy, rank)
)

-- One reason per user and item: where several strategies serve the same item to a user, a
-- dashboard showing them side by side must not give three different "because you watched".
-- The most specific reason wins (one naming the user's own history over "Something
-- different" over "Popular"), and among those the one of the strategy most likely right
-- about the item (the highest score), then the one ranking it higher, then the strategy's
-- name: the same choice on every build.
select
    explained.strategy,
    explained.user_id,
    explained.rank,
    explained.item_id,
    items.title,
    items.release_year,
    array_to_string(items.genres, ', ') as genres,
    first_value(explained.own_reason) over (
        partition by explained.user_id, explained.item_id
        order by explained.reason_specificity, explained.score desc nulls last, explained.rank, explained.strategy
    ) as reason,
    explained.score,
    explained.is_exploration
from explained
join items using (item_id)
