-- The lists served to users: every strategy's 'served' lists, built from each user's full
-- history, ranks 1..var('k'). A new strategy is one more ref in the list below.
{{ union_lists([
    ref('popularity_lists'),
    ref('item_knn_lists'),
    ref('markov_lists'),
    ref('lm_lists'),
    ref('lm_mmr_lists'),
    ref('lm_calibrated_lists'),
    ref('lm_explore_lists'),
], 'served') }}
