-- features.user_interests computed without the test events (the 'holdout' history), for
-- evaluation: new_interest_hit_rate and exploration must not peek at the item they are
-- scored on.
{{ user_interest_weights(ref('fit_events'), 'holdout') }}
