-- Recency, frequency, monetary value per user from every event, their 1-5 scores and the
-- R/F segment: the 'served' rows of features.user_rfm_by_purpose (the rules are there).
select * exclude (purpose)
from {{ ref('user_rfm_by_purpose') }}
where purpose = 'served'
