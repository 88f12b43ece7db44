-- The evaluation protocol's measures per strategy and K (rules: sql/macros/measures.sql):
-- eval.user_metrics averaged over the evaluated users, plus coverage of the lists.
{{ aggregate_measures(ref('user_metrics'), ref('holdout_recommendations'), ['strategy']) }}
