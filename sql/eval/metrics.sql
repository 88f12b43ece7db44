-- The evaluation protocol's measures per strategy and K (rules: sql/macros/measures.sql):
-- eval.user_metrics averaged over the evaluated users, plus coverage of the lists, with
-- bootstrap intervals over users (sql/macros/intervals.sql) beside the main measures.
with measures as (
    {{ aggregate_measures(ref('user_metrics'), ref('holdout_recommendations'), ['strategy']) }}
),

intervals as (
    {{ bootstrap_intervals(ref('user_metrics'), ref('holdout_recommendations'), ['strategy']) }}
)

select
    measures.*,
    intervals.* exclude (strategy, k)
from measures
left join intervals using (strategy, k)
order by strategy, k
