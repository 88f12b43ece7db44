{{ config(materialized='incremental', incremental_strategy='append', full_refresh=False,
          on_schema_change='append_new_columns') }}
-- eval.metrics over builds, appended: quality over time for a dashboard. invocation_id
-- makes this model (and only it) run in every build, even when nothing else changed; a
-- strategy and K get a row only when their measures differ from the last row kept for them
-- (or have none yet), so a build that changed nothing (a scheduled no-op, a retry) adds no
-- duplicate point to the history. _duckrec.runs records every build.
with metrics as (
    select * from {{ ref('metrics') }}
),

watermark as (
    select max(event_time) as data_watermark from {{ ref('events') }}
),

latest_checkpoint as (
    {{ latest_checkpoint(ref('lm_checkpoints')) }}
)
{% if is_incremental() %},

-- the measures of the last row kept per strategy and K (the columns of eval.metrics, in order)
kept as (
    select * exclude (run_id, built_at, data_watermark, checkpoint_id) from {{ this }}
    qualify row_number() over (partition by strategy, k order by built_at desc, run_id desc) = 1
)
{% endif %}

select
    '{{ invocation_id }}' as run_id,
    '{{ run_started_at }}'::timestamp as built_at,
    watermark.data_watermark,
    latest_checkpoint.checkpoint_id,
    metrics.*
from metrics
cross join watermark
left join latest_checkpoint on true
{% if is_incremental() %}
-- compared as JSON: NULL measures (no new-interest user) compare equal, and a column added
-- to eval.metrics since (kept has none) reads as a change rather than an error
where not exists (
    select 1 from kept
    where kept.strategy = metrics.strategy and kept.k = metrics.k and to_json(kept) = to_json(metrics)
)
{% endif %}
