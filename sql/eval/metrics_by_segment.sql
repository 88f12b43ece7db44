-- The evaluation protocol's measures per RFM segment, strategy and K (rules: sql/macros/measures.sql).
-- refs for the DAG: {{ ref('user_metrics') }} {{ ref('items') }} {{ ref('holdout_recommendations') }}
select * from (
{{ aggregate_measures(ref('user_metrics'), ref('holdout_recommendations'), ['strategy'], ['rfm_segment']) }}
)
order by strategy, k, rfm_segment
