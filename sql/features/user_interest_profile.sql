-- What each user is into, from their whole history (features.user_interests adds what
-- exploration probed): the 'served' rows of features.fit_interests.
select * exclude (purpose)
from {{ ref('fit_interests') }}
where purpose = 'served'
