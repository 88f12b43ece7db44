-- Which items are new, under every split rule: the newest var('new_item_share') of the items
-- with events, by their first event (ties: the higher item_id is newer). split_rule new_items
-- hides their train/valid events from the holdout purpose (features.event_splits), and
-- eval.new_item_metrics measures the users whose test item is one of them. Catalogue items
-- without any event have no first event and no row here.
with firsts as (
    select item_id, min(event_time) as first_event_time
    from {{ ref('events') }}
    group by item_id
),

ranked as (
    select
        *,
        row_number() over (order by first_event_time desc, item_id desc) as newness_rank,
        count(*) over () as n_items
    from firsts
)

select
    item_id,
    first_event_time,
    newness_rank::integer as newness_rank,
    newness_rank <= ceil(n_items * {{ var('new_item_share', 0.1) }}) as is_new
from ranked
