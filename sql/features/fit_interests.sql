-- Each list purpose's user interests over genres and tags, from the events and tags that
-- purpose may see (features.fit_events, features.fit_tags); the rules are in
-- sql/macros/interests.sql and the YAML. features.user_interest_profile is the 'served' rows,
-- features.user_interests_holdout the 'holdout' rows.
{{ user_interest_weights(ref('fit_events'), ref('fit_tags'), ref('item_interests')) }}
