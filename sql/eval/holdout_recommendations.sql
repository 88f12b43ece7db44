-- The lists scored by eval.*: every strategy's 'holdout' lists, built without the users'
-- test events, for users that have one. A new strategy is one more ref in the list below.
{{ union_lists([
    ref('popularity_lists'),
    ref('item_knn_lists'),
    ref('markov_lists'),
    ref('lm_lists'),
    ref('lm_mmr_lists'),
    ref('lm_calibrated_lists'),
    ref('lm_explore_lists'),
], 'holdout') }}
