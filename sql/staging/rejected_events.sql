-- Raw rating rows that did not become events, and why. One row per distinct rejected
-- record and reason; n_rows counts how many raw rows it stands for.
select
    rejection_reason as reason,
    user_id,
    item_id,
    raw_timestamp,
    value,
    count(*) as n_rows
from {{ ref('ratings_checked') }}
where rejection_reason is not null
group by all
