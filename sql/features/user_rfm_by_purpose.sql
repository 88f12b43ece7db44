-- Recency, frequency, monetary value per list purpose and user, from the events that purpose
-- may see (features.fit_events): 'served' is features.user_rfm (every event); 'holdout' is
-- what the holdout lists and eval.* segment users by, so a test event never moves a user
-- to another segment (and another share of exploration slots).
--   recency_days: whole days from the user's last event to the reference date
--                 (var as_of, default the purpose's last event);
--   frequency:    distinct days with at least one event;
--   monetary:     sum of the event value (var value_column names the raw column);
--   scores:       the quintile of the user's rank among the purpose's users,
--                 1 + floor(5 * (rank - 1) / n), so 5 is the best fifth; users with equal
--                 values share the lower score (rank() gives ties the first place of their
--                 group). Recency ranks oldest first, so the most recent users score 5.
-- Segments from (r_score, f_score), the ten-segment R/F grid (sql/macros/rfm.sql):
--   Champions r5 f4-5 | Loyal r3-4 f4-5 | Potential loyalists r4-5 f2-3 | New r5 f1
--   Promising r4 f1 | Need attention r3 f3 | At risk r1-2 f3-4 | Cannot lose them r1-2 f5
--   Hibernating r2-3 f1-2 | Lost r1 f1-2
with events as (
    select purpose, user_id, event_time, value from {{ ref('fit_events') }}
),

reference_date as (
    select
        purpose,
        {{ timestamp_var_or('as_of', 'max(event_time)') }} as as_of
    from events
    group by purpose
),

per_user as (
    select
        purpose,
        user_id,
        count(*) as n_events,
        count(distinct cast(event_time as date)) as frequency,
        sum(value) as monetary,
        min(event_time) as first_event_time,
        max(event_time) as last_event_time
    from events
    group by purpose, user_id
),

measured as (
    select
        per_user.*,
        date_diff('day', cast(per_user.last_event_time as date), cast(reference_date.as_of as date)) as recency_days
    from per_user
    join reference_date using (purpose)
),

scored as (
    select
        *,
        (1 + floor(5 * (rank() over (partition by purpose order by recency_days desc) - 1)
            / count(*) over (partition by purpose)))::integer as r_score,
        (1 + floor(5 * (rank() over (partition by purpose order by frequency) - 1)
            / count(*) over (partition by purpose)))::integer as f_score,
        (1 + floor(5 * (rank() over (partition by purpose order by monetary) - 1)
            / count(*) over (partition by purpose)))::integer as m_score
    from measured
)

select
    purpose,
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
