-- What each user is into, from their whole history: genres and top tags with long-term,
-- short-term and blended weights (the rules are in macros/interests.sql and the YAML).
{{ user_interest_weights(ref('fit_events'), 'served') }}
