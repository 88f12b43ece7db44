-- One row per tagging of a catalogue item: who gave which tag to which item, and when.
-- Tags are normalised (trimmed, lower case, inner whitespace collapsed), so 'Dark Comedy',
-- 'dark comedy ' and 'dark  comedy' are one tag. staging.item_tags counts them per item;
-- features.fit_tags keeps, per list purpose, the taggings that purpose may see.
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
    tags.user_id::bigint as user_id,
    tags.item_id::bigint as item_id,
    tags.tag,
    make_timestamp(tags.raw_timestamp * 1000000) as tagged_at
from tags
join known_items on known_items.item_id = tags.item_id
where tags.tag is not null and tags.tag <> ''
