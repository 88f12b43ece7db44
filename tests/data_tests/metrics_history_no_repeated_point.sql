-- eval.metrics_history has no two consecutive rows of a strategy and K with the same
-- measures: a build that changed nothing must not add a duplicate point to "quality over
-- time". Fails with the repeated rows (the later run and the run it repeats).
with history as (
    select
        run_id,
        built_at,
        strategy,
        k,
        {{ measures_json('history') }} as measures
    from {{ ref('metrics_history') }} history
),

consecutive as (
    select
        *,
        lag(run_id) over w as previous_run_id,
        lag(measures) over w as previous_measures
    from history
    window w as (partition by strategy, k order by built_at, run_id)
)

select run_id, previous_run_id, strategy, k, built_at
from consecutive
where measures = previous_measures
