-- The evaluation protocol's measures per strategy and K (rules: sql/macros/metrics.sql).
-- refs for the DAG: {{ ref('user_metrics') }} {{ ref('items') }} {{ ref('holdout_recommendations') }}
{{ aggregate_metrics([]) }}
