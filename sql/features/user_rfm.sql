-- Recency, frequency, monetary value per user, their 1-5 scores and the R/F segment.
--   recency_days: whole days from the user's last event to the reference date
--                 (var as_of, default the dataset's last event);
--   frequency:    distinct days with at least one event;
--   monetary:     sum of the event value (var value_column names the raw column);
--   scores:       the quintile of the user's rank among all users, 1 + floor(5 * (rank - 1) / n),
--                 so 5 is the best fifth; users with equal values share the lower score (rank()
--                 gives ties the first place of their group). Recency ranks oldest first, so the
--                 most recent users score 5.
-- Segments from (r_score, f_score), the ten-segment R/F grid:
--   Champions r5 f4-5 | Loyal r3-4 f4-5 | Potential loyalists r4-5 f2-3 | New r5 f1
--   Promising r4 f1 | Need attention r3 f3 | At risk r1-2 f3-4 | Cannot lose them r1-2 f5
--   Hibernating r2-3 f1-2 | Lost r1 f1-2
with events as (
    select * from {{ ref('events') }}
),

reference_date as (
    select
        {% if var('as_of', none) is none %}
        max(event_time)
        {% else %}
        any_value(cast('{{ var("as_of") }}' as timestamp))
        {% endif %} as as_of
    from events
),

per_user as (
    select
        user_id,
        count(*) as n_events,
        count(distinct cast(event_time as date)) as frequency,
        sum(value) as monetary,
        min(event_time) as first_event_time,
        max(event_time) as last_event_time
    from events
    group by user_id
),

measured as (
    select
        per_user.*,
        date_diff('day', cast(per_user.last_event_time as date), cast(reference_date.as_of as date)) as recency_days
    from per_user
    cross join reference_date
),

scored as (
    select
        *,
        (1 + floor(5 * (rank() over (order by recency_days desc) - 1) / count(*) over ()))::integer as r_score,
        (1 + floor(5 * (rank() over (order by frequency) - 1) / count(*) over ()))::integer as f_score,
        (1 + floor(5 * (rank() over (order by monetary) - 1) / count(*) over ()))::integer as m_score
    from measured
)

select
    user_id,
    recency_days,
    frequency,
    monetary,
    r_score,
    f_score,
    m_score,
    {{ rfm_segment('r_score', 'f_score') }} as rfm_segment,
    n_events,
    first_event_time,
    last_event_time
from scored
