{#
  Interest weights of each list purpose's users over genres and tags, from the events
  (`fit_events`, features.fit_events) and the tags (`fit_tags`, features.fit_tags) the purpose
  may see; `items` is features.item_interests (item_id, interest_type, interests: each item's
  genres, or its cluster for a catalogue without labels). One row per purpose, user and interest.
  An event spreads a weight of 1 evenly over its item's interests (and, separately, its tags),
  so a user's item-interest weights add up to at most 1 (items without one add nothing):
    long_term_weight  = that share over all the user's events;
    short_term_weight = the same over the user's last var('short_term_events') events;
    weight            = var('interest_short_term_mix') * short + (1 - mix) * long.
  rank orders a user's interests of one type by weight (then name); is_top marks the first
  var('top_interests'). Only each user's top tags are kept; every genre is kept.
#}
{% macro user_interest_weights(fit_events, fit_tags, items) -%}
{%- set window = var('short_term_events', 20) -%}
{%- set mix = var('interest_short_term_mix', 0.5) -%}
{%- set top_n = var('top_interests', 3) -%}
with history as (
    select
        purpose,
        user_id,
        item_id,
        row_number() over (partition by purpose, user_id order by position desc) as recency_position,
        count(*) over (partition by purpose, user_id) as n_events
    from {{ fit_events }}
),

items as (
    select item_id, interest_type, interests from {{ items }}
),

item_tag_lists as (
    select purpose, item_id, list(distinct tag order by tag) as tags
    from {{ fit_tags }}
    group by purpose, item_id
),

genre_events as (
    {{ interest_events('items.interest_type', 'items', 'interests', 'item_id') }}
),

tag_events as (
    {{ interest_events("'tag'", 'item_tag_lists', 'tags', 'purpose, item_id') }}
),

weighted as (
    select
        purpose,
        user_id,
        interest_type,
        interest,
        -- decimal sums are exact: a weight is the same whatever order the scan feeds it in
        sum(share::decimal(38, 18)) / any_value(n_events) as long_term_weight,
        coalesce(sum(share::decimal(38, 18)) filter (where recency_position <= {{ window }}), 0)
            / least(any_value(n_events), {{ window }}) as short_term_weight
    from (select * from genre_events union all select * from tag_events)
    group by purpose, user_id, interest_type, interest
),

ranked as (
    select
        *,
        {{ mix }} * short_term_weight + (1 - {{ mix }}) * long_term_weight as weight,
        row_number() over (
            partition by purpose, user_id, interest_type
            order by {{ mix }} * short_term_weight + (1 - {{ mix }}) * long_term_weight desc, interest
        ) as rank
    from weighted
)

select
    purpose,
    user_id,
    interest_type,
    interest,
    weight::double as weight,
    short_term_weight::double as short_term_weight,
    long_term_weight::double as long_term_weight,
    rank::integer as rank,
    rank <= {{ top_n }} as is_top
from ranked
where interest_type <> 'tag' or rank <= {{ top_n }}
{%- endmacro %}


{#
  One event row per interest of the event's item (for user_interest_weights): `lists` is the
  CTE holding each item's interests of `interest_type` in the list column `column`, joined to
  the CTE `history` on `join_keys`. Each interest gets an equal share of the event's weight 1.
  `interest_type` is a SQL expression (a quoted literal or a column of `lists`).
#}
{% macro interest_events(interest_type, lists, column, join_keys) -%}
    select
        history.purpose,
        history.user_id,
        history.recency_position,
        history.n_events,
        {{ interest_type }} as interest_type,
        unnest({{ lists }}.{{ column }}) as interest,
        1.0 / len({{ lists }}.{{ column }}) as share
    from history
    join {{ lists }} using ({{ join_keys }})
    where len({{ lists }}.{{ column }}) > 0
{%- endmacro %}


{#
  Whether an item is a new interest for a user: the one definition shared by evaluation
  (new_interest_hit_rate, sql/macros/measures.sql) and exploration (the candidates lm_explore
  may probe, recs.lm_candidate_interests). For every distinct (purpose, user_id, item_id) row
  of `pairs`, with `interests` (features.fit_interests) and `items` (features.item_interests:
  each item's genres, or its cluster; "genre" below reads "item interest"):
    is_new_interest  the item has a genre, the user has top genres for that purpose (is_top),
                     and none of the item's genres is one of them. An item without genres names
                     no interest to open, so it is never new; a user without top genres (no
                     genre in the history the purpose sees) has no interests to step outside
                     of, so nothing is new for them.
    probed_interest  for a new-interest item, the interest it opens: its genre the user has
                     shown least (lowest weight, a genre never shown 0), ties by name; null
                     otherwise.
#}
{% macro new_interests(pairs, interests, items) -%}
with pairs as (
    select distinct purpose, user_id, item_id from {{ pairs }}
),

genre_interests as (
    select purpose, user_id, interest as genre, weight, is_top
    from {{ interests }}
    where interest_type <> 'tag'
),

users_with_top as (
    select distinct purpose, user_id, true as has_top_genres
    from genre_interests
    where is_top
),

item_genres as (
    select item_id, unnest(interests) as genre from {{ items }}
),

pair_genres as (
    select
        pairs.purpose,
        pairs.user_id,
        pairs.item_id,
        item_genres.genre,
        coalesce(genre_interests.weight, 0) as weight,
        coalesce(genre_interests.is_top, false) as is_top
    from pairs
    join item_genres using (item_id)
    left join genre_interests using (purpose, user_id, genre)
),

per_pair as (
    select
        purpose,
        user_id,
        item_id,
        not bool_or(is_top) as outside_top,
        arg_min(genre, {'weight': weight, 'genre': genre}) as least_shown_genre
    from pair_genres
    group by purpose, user_id, item_id
)

select
    pairs.purpose,
    pairs.user_id,
    pairs.item_id,
    coalesce(per_pair.outside_top and users_with_top.has_top_genres, false) as is_new_interest,
    case
        when per_pair.outside_top and users_with_top.has_top_genres then per_pair.least_shown_genre
    end as probed_interest
from pairs
left join per_pair using (purpose, user_id, item_id)
left join users_with_top using (purpose, user_id)
{%- endmacro %}
