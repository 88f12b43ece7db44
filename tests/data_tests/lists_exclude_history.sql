-- No list recommends an item from the user's history for its purpose: served lists
-- (recs.recommendations) none of the user's events, holdout lists
-- (eval.holdout_recommendations) none of their train + valid events.
-- Reads the published unions, so every strategy added to them is checked too.
with lists as (
    select 'served' as purpose, strategy, user_id, rank, item_id from {{ ref('recommendations') }}
    union all
    select 'holdout' as purpose, strategy, user_id, rank, item_id from {{ ref('holdout_recommendations') }}
)

select lists.*
from lists
semi join {{ ref('fit_events') }} history using (purpose, user_id, item_id)
