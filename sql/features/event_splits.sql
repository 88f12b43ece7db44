-- Train / valid / test split of every event, per var('split_rule').
--   leave_last_out (default): order each user's events by (event_time, item_id); the last is
--     'test', the one before it 'valid', the rest 'train'. Users with fewer than 3 events stay
--     in 'train' only.
--   temporal: events at or after var('temporal_cutoff') (default: the 90th percentile of event
--     times) are 'test'; of a user with test events and at least 2 earlier events, the last
--     earlier event is 'valid'; the rest is 'train'.
--   new_items: leave_last_out's test events, and the events of the new items
--     (features.new_items: the newest var('new_item_share') of items by first event) that are
--     not test events become 'unseen': features.fit_events keeps them from the holdout purpose,
--     so every holdout list and the language model know nothing of those items' audience. Of
--     the remaining (visible) events of a user with a test event, the last is 'valid' when at
--     least one visible event precedes it (a valid event that would fall on a new item moves
--     back to the last visible one), the rest 'train'.
-- position is the event's 1-based place in the user's whole sequence, same order.
{% set split_rule = var('split_rule', 'leave_last_out') %}
with events as (
    select user_id, item_id, event_time, value
    from {{ ref('events') }}
),

sequenced as (
    select
        *,
        row_number() over (partition by user_id order by event_time, item_id, value) as position,
        count(*) over (partition by user_id) as n_user_events
    from events
),

{% if split_rule == 'leave_last_out' %}
assigned as (
    select
        *,
        case
            when n_user_events < 3 then 'train'
            when position = n_user_events then 'test'
            when position = n_user_events - 1 then 'valid'
            else 'train'
        end as split
    from sequenced
)
{% elif split_rule == 'temporal' %}
cutoff as (
    {{ temporal_cutoff('events') }}
),

periods as (
    select
        sequenced.*,
        sequenced.event_time >= cutoff.cutoff_time as is_after_cutoff
    from sequenced
    cross join cutoff
),

per_user as (
    select
        user_id,
        count(*) filter (where is_after_cutoff) as n_after,
        count(*) filter (where not is_after_cutoff) as n_before,
        max(position) filter (where not is_after_cutoff) as last_position_before
    from periods
    group by user_id
),

assigned as (
    select
        periods.*,
        case
            when periods.is_after_cutoff then 'test'
            when per_user.n_after > 0 and per_user.n_before >= 2
                and periods.position = per_user.last_position_before then 'valid'
            else 'train'
        end as split
    from periods
    join per_user using (user_id)
)
{% elif split_rule == 'new_items' %}
marked as (
    select
        sequenced.*,
        case
            when sequenced.n_user_events >= 3 and sequenced.position = sequenced.n_user_events then 'test'
            when new_items.is_new then 'unseen'
        end as fixed_split
    from sequenced
    left join {{ ref('new_items') }} new_items using (item_id)
),

visible as (
    select
        user_id,
        position,
        row_number() over (partition by user_id order by position desc) as place_from_end,
        count(*) over (partition by user_id) as n_visible
    from marked
    where fixed_split is null
),

assigned as (
    select
        marked.* exclude (fixed_split),
        coalesce(
            marked.fixed_split,
            case
                when marked.n_user_events >= 3 and visible.place_from_end = 1 and visible.n_visible >= 2 then 'valid'
                else 'train'
            end
        ) as split
    from marked
    left join visible using (user_id, position)
)
{% else %}
assigned as (
    select *, error('features.event_splits: var split_rule is ''{{ split_rule }}''; expected ''leave_last_out'', ''temporal'' or ''new_items''') as split
    from sequenced
)
{% endif %}

select
    user_id,
    item_id,
    event_time,
    value,
    position::integer as position,
    split::varchar as split
from assigned
