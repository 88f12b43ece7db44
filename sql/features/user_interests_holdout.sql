-- features.user_interests computed without the test events and the tags they would bring
-- (the 'holdout' rows of features.fit_interests), for evaluation: new_interest_hit_rate and
-- exploration must not peek at the item they are scored on.
select * exclude (purpose)
from {{ ref('fit_interests') }}
where purpose = 'holdout'
