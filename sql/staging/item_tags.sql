-- Free-text tags per item (staging.tag_events counted per item and normalised tag).
with tag_events as (
    select * from {{ ref('tag_events') }}
)

select
    item_id,
    tag,
    count(distinct user_id) as n_users,
    count(*) as n_taggings,
    min(tagged_at) as first_tagged_at,
    max(tagged_at) as last_tagged_at
from tag_events
group by item_id, tag
