-- Each user's interests (features.user_interest_profile) and the interests the served
-- lm_explore lists probe. A probed interest the user has never shown gets a row of its own
-- with zero weights, so an analyst sees every interest exploration opened. confirmed_at: the
-- first event, after the build that first probed the interest (recs.exploration_log), on an
-- item of that genre: when later events confirmed what exploring opened. "Genre" reads "item
-- interest": features.item_interests' genres, or clusters for a catalogue without labels.
with profile as (
    select * from {{ ref('user_interest_profile') }}
),

explored as (
    select
        user_id,
        probed_interest as interest,
        count(*)::integer as n_explore_slots,
        min(rank)::integer as best_explore_rank
    from {{ ref('lm_explore_lists') }}
    where purpose = 'served' and is_exploration
    group by user_id, probed_interest
),

confirmed as (
    select first_probed.user_id, first_probed.interest, min(events.event_time) as confirmed_at
    from (
        select user_id, probed_interest as interest, min(data_watermark) as probed_after
        from {{ ref('exploration_log') }}
        where strategy = 'lm_explore' and is_exploration
        group by all
    ) first_probed
    join {{ ref('events') }} events
        on events.user_id = first_probed.user_id and events.event_time > first_probed.probed_after
    join {{ ref('item_interests') }} items
        on items.item_id = events.item_id and list_contains(items.interests, first_probed.interest)
    group by all
),

known as (
    select
        profile.*,
        coalesce(explored.n_explore_slots, 0) as n_explore_slots,
        explored.best_explore_rank
    from profile
    left join explored
        on explored.user_id = profile.user_id
        and profile.interest_type <> 'tag'
        and explored.interest = profile.interest
),

opened as (
    select
        explored.user_id,
        (select any_value(interest_type) from {{ ref('item_interests') }}) as interest_type,
        explored.interest,
        0.0 as weight,
        0.0 as short_term_weight,
        0.0 as long_term_weight,
        null::bigint as rank,
        false as is_top,
        explored.n_explore_slots,
        explored.best_explore_rank
    from explored
    anti join profile
        on profile.user_id = explored.user_id
        and profile.interest_type <> 'tag'
        and profile.interest = explored.interest
)

select interests.*, confirmed.confirmed_at
from (
    select
        user_id, interest_type, interest, weight, short_term_weight, long_term_weight, rank, is_top,
        n_explore_slots > 0 as is_explored,
        n_explore_slots,
        best_explore_rank
    from known
    union all by name
    select
        user_id, interest_type, interest, weight, short_term_weight, long_term_weight, rank, is_top,
        true as is_explored,
        n_explore_slots,
        best_explore_rank
    from opened
) interests
left join confirmed
    on confirmed.user_id = interests.user_id
    and interests.interest_type <> 'tag'
    and confirmed.interest = interests.interest
