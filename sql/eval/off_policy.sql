-- Off-policy estimates of every strategy from lm_explore's logs (off_policy_estimate,
-- sql/macros/off_policy.sql), on the holdout: the logs are lm_explore's holdout lists cut at
-- var k with their propensities, the outcomes the test events, and each estimate sits beside
-- the strategy's directly measured precision at K on the same users, so the estimator's error
-- can be read off. The same macro scores served logs (recs.recommendations) against the events
-- of later builds.
{%- set k = var('k', 10) %}
with logged as (
    select user_id, item_id, propensity from {{ ref('holdout_recommendations') }}
    where strategy = 'lm_explore' and rank <= {{ k }}
),

targets as (
    select strategy, user_id, item_id from {{ ref('holdout_recommendations') }}
    where rank <= {{ k }} and user_id in (select user_id from logged)
),

tests as (
    select user_id, item_id from {{ ref('event_splits') }} where split = 'test'
),

estimates as (
    {{ off_policy_estimate('logged', 'targets', 'tests', ['strategy']) }}
),

direct as (
    select targets.strategy, avg((tests.user_id is not null)::integer) as direct_precision
    from targets
    left join (select distinct user_id, item_id from tests) tests using (user_id, item_id)
    group by all
)

select
    strategy,
    {{ k }} as k,
    n_users,
    n_target_slots,
    round(ips, 12) as ips,
    round(snips, 12) as snips,
    round(ips_low, 12) as ips_low,
    round(ips_high, 12) as ips_high,
    round(direct_precision, 12) as direct_precision,
    direct_precision between ips_low and ips_high as direct_within_interval
from estimates
join direct using (strategy)
order by strategy
