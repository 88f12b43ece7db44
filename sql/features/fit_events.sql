-- The events each list purpose may learn from and must exclude from its lists: the one
-- definition of what a purpose may see (features.fit_tags applies it to tags; every
-- per-purpose feature, list and the language model read these rows):
--   'holdout': every event not in the test split (train + valid, all users), so holdout lists
--              never see what they are scored on; under split_rule new_items, not the
--              'unseen' events either (the new items' events before the test ones);
--   'served':  every event.
with splits as (
    select * from {{ ref('event_splits') }}
)

select 'holdout' as purpose, user_id, item_id, event_time, value, position, split
from splits
where split not in ('test', 'unseen')

union all

select 'served' as purpose, user_id, item_id, event_time, value, position, split
from splits
