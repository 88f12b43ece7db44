{#
  Interest weights of each user over genres and tags, from the rows of `fit_events`
  (features.fit_events) whose purpose is `purpose`.
  An event spreads a weight of 1 evenly over its item's genres (and, separately, its tags),
  so a user's genre weights add up to at most 1 (items without genres add nothing):
    long_term_weight  = that share over all the user's events;
    short_term_weight = the same over the user's last var('short_term_events') events;
    weight            = var('interest_short_term_mix') * short + (1 - mix) * long.
  rank orders a user's interests of one type by weight (then name); is_top marks the first
  var('top_interests'). Only each user's top tags are kept; every genre is kept.
#}
{% macro user_interest_weights(fit_events, purpose) -%}
{%- set window = var('short_term_events', 20) -%}
{%- set mix = var('interest_short_term_mix', 0.5) -%}
{%- set top_n = var('top_interests', 3) -%}
with history as (
    select
        user_id,
        item_id,
        row_number() over (partition by user_id order by position desc) as recency_position,
        count(*) over (partition by user_id) as n_events
    from {{ fit_events }}
    where purpose = '{{ purpose }}'
),

items as (
    select item_id, genres from {{ ref('items') }}
),

item_tag_lists as (
    select item_id, list(tag order by tag) as tags from {{ ref('item_tags') }} group by item_id
),

genre_events as (
    select
        history.user_id,
        history.recency_position,
        history.n_events,
        'genre' as interest_type,
        unnest(items.genres) as interest,
        1.0 / len(items.genres) as share
    from history
    join items using (item_id)
    where len(items.genres) > 0
),

tag_events as (
    select
        history.user_id,
        history.recency_position,
        history.n_events,
        'tag' as interest_type,
        unnest(item_tag_lists.tags) as interest,
        1.0 / len(item_tag_lists.tags) as share
    from history
    join item_tag_lists using (item_id)
),

weighted as (
    select
        user_id,
        interest_type,
        interest,
        sum(share) / any_value(n_events) as long_term_weight,
        coalesce(sum(share) filter (where recency_position <= {{ window }}), 0)
            / least(any_value(n_events), {{ window }}) as short_term_weight
    from (select * from genre_events union all select * from tag_events)
    group by user_id, interest_type, interest
),

ranked as (
    select
        *,
        {{ mix }} * short_term_weight + (1 - {{ mix }}) * long_term_weight as weight,
        row_number() over (
            partition by user_id, interest_type
            order by {{ mix }} * short_term_weight + (1 - {{ mix }}) * long_term_weight desc, interest
        ) as rank
    from weighted
)

select
    user_id,
    interest_type,
    interest,
    weight::double as weight,
    short_term_weight::double as short_term_weight,
    long_term_weight::double as long_term_weight,
    rank::integer as rank,
    rank <= {{ top_n }} as is_top
from ranked
where interest_type = 'genre' or rank <= {{ top_n }}
{%- endmacro %}
