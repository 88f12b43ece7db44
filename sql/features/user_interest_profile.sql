-- What each user is into, from their whole history (features.user_interests adds what exploration probed):
-- short-term and blended weights (the rules are in macros/interests.sql and the YAML).
{{ user_interest_weights(ref('fit_events'), 'served') }}
