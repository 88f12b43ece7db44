-- Free-text tags per item, normalised: trimmed, lower case, inner whitespace collapsed,
-- so 'Dark Comedy', 'dark comedy ' and 'dark  comedy' are one tag.
with tags as (
    select
        "userId" as user_id,
        "movieId" as item_id,
        regexp_replace(lower(trim("tag")), '\s+', ' ', 'g') as tag,
        "timestamp" as raw_timestamp
    from {{ ref('tags') }}
    where "movieId" is not null
),

known_items as (
    select item_id from {{ ref('items') }}
)

select
    tags.item_id::bigint as item_id,
    tags.tag,
    count(distinct tags.user_id) as n_users,
    count(*) as n_taggings,
    make_timestamp(min(tags.raw_timestamp) * 1000000) as first_tagged_at,
    make_timestamp(max(tags.raw_timestamp) * 1000000) as last_tagged_at
from tags
join known_items on known_items.item_id = tags.item_id
where tags.tag is not null and tags.tag <> ''
group by tags.item_id, tags.tag
