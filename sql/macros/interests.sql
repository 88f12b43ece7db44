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
{% macro new_interests(pairs, interests, items, distinct_pairs=true) -%}
{#- one row per pair, no aggregation over the pairs: each pair reads its item's interest list
    and its user's weights (a map) and top interests once; at 48M candidate pairs (Amazon
    Beauty) a join per (pair, genre) and a group by over the pairs took minutes.
    distinct_pairs=false: `pairs` is known to be unique (recs.lm_candidates), not deduplicated -#}
with pairs as (
    select {% if distinct_pairs %}distinct {% endif %}purpose, user_id, item_id from {{ pairs }}
),

genre_interests as (
    -- one row per (user, interest): were an interest listed under two types, its lowest
    -- weight and either's top flag, as a join over both rows would read it
    select purpose, user_id, interest as genre, min(weight) as weight, bool_or(is_top) as is_top
    from {{ interests }}
    where interest_type <> 'tag'
    group by purpose, user_id, interest
),

user_genres as (
    select
        purpose,
        user_id,
        map(list(genre order by genre), list(weight order by genre)) as weights,
        list(genre order by genre) filter (where is_top) as top_genres
    from genre_interests
    group by purpose, user_id
),

pair_genres as (
    select
        pairs.purpose,
        pairs.user_id,
        pairs.item_id,
        items.interests as genres,
        user_genres.weights,
        user_genres.top_genres,
        len(items.interests) > 0 and len(user_genres.top_genres) > 0
            and not list_has_any(items.interests, user_genres.top_genres) as is_new
    from pairs
    left join {{ items }} as items using (item_id)
    left join user_genres using (purpose, user_id)
)

select
    purpose,
    user_id,
    item_id,
    coalesce(is_new, false) as is_new_interest,
    case
        when is_new then list_sort(list_transform(
            genres, lambda g: {'weight': coalesce(weights[g], 0), 'genre': g}))[1].genre
    end as probed_interest
from pair_genres
{%- endmacro %}
