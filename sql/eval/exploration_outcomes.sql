-- What exploring taught, per logged build (data_watermark, recs.exploration_log) and strategy:
-- of the (user, interest) pairs the strategy's served list probed, the share the user engaged
-- with (an event on an item of that genre) in the var exploration_outcome_days days of events
-- after that build, against the same share for the user's other genres outside their top
-- interests at that build (recs.top_interests_log) that the strategy did not probe. A build with no later events yet has null shares
-- (n_later_events = 0): its outcome is not known.
{%- set days = var('exploration_outcome_days', 30) %}
with log as (
    select * from {{ ref('exploration_log') }}
),

events as (
    select user_id, item_id, event_time from {{ ref('events') }}
),

item_genres as (
    select item_id, unnest(interests) as genre from {{ ref('item_interests') }}
),

genres as (
    select distinct genre from item_genres
),

-- the user's top genres as they were at each build (recs.top_interests_log), not today's
top_genres as (
    select data_watermark, user_id, genre from {{ ref('top_interests_log') }}
),

-- every (build, strategy, user) the log has, and every genre outside the user's top ones
-- (a probed genre stays in even if it has since become a top one: that is what we measure)
pairs as (
    select builds.data_watermark, builds.strategy, builds.user_id, genres.genre,
        probed.user_id is not null as is_probed
    from (select distinct data_watermark, strategy, user_id from log
          where data_watermark in (select data_watermark from top_genres)) builds
    cross join genres
    left join top_genres on top_genres.data_watermark = builds.data_watermark
        and top_genres.user_id = builds.user_id and top_genres.genre = genres.genre
    left join (select distinct data_watermark, strategy, user_id, probed_interest from log) probed
        on probed.data_watermark = builds.data_watermark and probed.strategy = builds.strategy
        and probed.user_id = builds.user_id and probed.probed_interest = genres.genre
    where probed.user_id is not null or top_genres.user_id is null
),

engaged as (
    select distinct builds.data_watermark, events.user_id, item_genres.genre
    from (select distinct data_watermark from log) builds
    join events
        on events.event_time > builds.data_watermark
        and events.event_time <= builds.data_watermark + to_days({{ days }})
    join item_genres using (item_id)
),

later as (
    select builds.data_watermark, count(events.user_id) as n_later_events
    from (select distinct data_watermark from log) builds
    left join events
        on events.event_time > builds.data_watermark
        and events.event_time <= builds.data_watermark + to_days({{ days }})
    group by all
)

select
    pairs.data_watermark,
    pairs.strategy,
    {{ days }} as outcome_days,
    any_value(later.n_later_events) as n_later_events,
    count(*) filter (where pairs.is_probed) as n_probed,
    case when any_value(later.n_later_events) > 0 then
        round(avg((engaged.user_id is not null)::integer) filter (where pairs.is_probed), 12) end as probed_engaged_share,
    count(*) filter (where not pairs.is_probed) as n_not_probed,
    case when any_value(later.n_later_events) > 0 then
        round(avg((engaged.user_id is not null)::integer) filter (where not pairs.is_probed), 12) end
        as not_probed_engaged_share
from pairs
join later using (data_watermark)
left join engaged using (data_watermark, user_id, genre)
group by pairs.data_watermark, pairs.strategy
order by pairs.data_watermark, pairs.strategy
