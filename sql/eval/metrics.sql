-- The evaluation protocol's measures per strategy and K (rules: sql/macros/measures.sql):
-- eval.user_metrics averaged over the evaluated users, plus coverage of the lists.
select * from (
{{ aggregate_measures(ref('user_metrics'), ref('holdout_recommendations'), ['strategy']) }}
)
order by strategy, k
