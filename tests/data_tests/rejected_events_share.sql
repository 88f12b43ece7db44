{{ config(severity='warn') }}
-- Warns when more than var max_rejected_share (project.yml, default 1%) of the raw rating
-- rows were rejected (staging.rejected_events): a truncated item file or a wrong value range
-- drops events silently otherwise. Returns one row per rejection reason, with the totals.
with rejected as (
    select reason, sum(n_rows) as n_rows
    from {{ ref('rejected_events') }}
    group by reason
),

total as (
    select count(*) as n_ratings from {{ ref('ratings') }}
),

shares as (
    select
        rejected.reason,
        rejected.n_rows,
        sum(rejected.n_rows) over () as n_rejected,
        total.n_ratings,
        sum(rejected.n_rows) over () / total.n_ratings as rejected_share
    from rejected
    cross join total
)

select *
from shares
where rejected_share > {{ var('max_rejected_share', 0.01) }}
