-- The evaluation protocol's measures per RFM segment, strategy and K (rules: sql/macros/measures.sql).
select * from (
{{ aggregate_measures(ref('user_metrics'), ref('holdout_recommendations'), ['strategy'], ['rfm_segment']) }}
)
order by strategy, k, rfm_segment
