-- The taggings (staging.tag_events) each list purpose may see: features.fit_events' rule
-- applied to tags, so content tokens and tag interests cannot carry a test event in.
--   'served':  every tagging;
--   'holdout': no tag a user gave an item whose events with that user the purpose does not
--              see (a user's own tags on their test item), and, under split_rule temporal,
--              no tag given at or after the cutoff (the test period).
{% set split_rule = var('split_rule', 'leave_last_out') %}
with tag_events as (
    select * from {{ ref('tag_events') }}
),

fit_pairs as (
    select distinct purpose, user_id, item_id from {{ ref('fit_events') }}
),

purposes as (
    select distinct purpose from fit_pairs
),

-- (user, item) pairs with events a purpose does not see; every event is a 'served' one
hidden_pairs as (
    select purposes.purpose, served.user_id, served.item_id
    from purposes
    cross join fit_pairs served
    anti join fit_pairs own
        on own.purpose = purposes.purpose and own.user_id = served.user_id and own.item_id = served.item_id
    where served.purpose = 'served'
),

cutoff as (
    {% if split_rule == 'temporal' %}
    {{ temporal_cutoff(ref('events')) }}
    {% else %}
    select null::timestamp as cutoff_time
    {% endif %}
),

visible as (
    select purposes.purpose, tag_events.*
    from purposes
    cross join tag_events
    cross join cutoff
    where purposes.purpose = 'served'
        or cutoff.cutoff_time is null
        or tag_events.tagged_at < cutoff.cutoff_time
)

select visible.purpose, visible.user_id, visible.item_id, visible.tag, visible.tagged_at
from visible
anti join hidden_pairs using (purpose, user_id, item_id)
