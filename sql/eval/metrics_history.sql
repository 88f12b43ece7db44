{{ config(materialized='incremental', incremental_strategy='append', full_refresh=False,
          on_schema_change='append_new_columns') }}
-- eval.metrics of every build, appended: quality over time for a dashboard. invocation_id
-- makes this model (and only it) run in every build, even when nothing else changed.
with metrics as (
    select * from {{ ref('metrics') }}
),

watermark as (
    select max(event_time) as data_watermark from {{ ref('events') }}
),

latest_checkpoint as (
    {{ latest_checkpoint(ref('lm_checkpoints')) }}
)

select
    '{{ invocation_id }}' as run_id,
    '{{ run_started_at }}'::timestamp as built_at,
    watermark.data_watermark,
    latest_checkpoint.checkpoint_id,
    metrics.*
from metrics
cross join watermark
left join latest_checkpoint on true
