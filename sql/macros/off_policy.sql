{#
  Off-policy evaluation from served logs: how a TARGET list policy would have done, estimated
  only from the slots a LOGGING policy served and the events that came after.
    logged    (user_id, item_id, propensity): the logging policy's served slots, propensity the
              probability with which it chose the slot's item (> 0; lm_explore logs it in
              recs.recommendations: 1.0 on exploit slots, the draw's probability on probes)
    target    (by..., user_id, item_id): the slots the target policy would serve the same users
    outcomes  (user_id, item_id): the later events; a slot's reward is 1 if its user engaged
              with its item there, else 0
  Per target key (`by`), over the logged users:
    n_users, n_target_slots   logged users and the target's slots for them
    ips     inverse propensity scoring: sum over logged slots of 1[target serves the item to
            the user] * reward / propensity, divided by n_target_slots: the target's reward
            per slot (its precision when outcomes are hits)
    snips   self-normalised IPS: the same sum divided by the sum of the weights
            1[target serves it] / propensity instead of n_target_slots (less variance, a little bias)
    ips_low, ips_high   ips -/+ 1.96 standard errors, the error from the spread of the users'
            weighted sums (a normal approximation, users independent)
  Unbiased only where the logging policy gives every item the target serves a nonzero
  probability (support): items the logging policy never shows count as misses. The propensity
  of a list's second and later probes is conditional on the earlier ones; the estimator reads
  it as the item's chance to be in the list, an approximation when a list has several probes.
#}
{% macro off_policy_estimate(logged, target, outcomes, by) -%}
{%- set keys = by | join(', ') -%}
with logged as (
    select user_id, item_id, propensity from {{ logged }}
),

users as (
    select distinct user_id from logged
),

target as (
    select {{ keys }}, user_id, item_id from {{ target }} semi join users using (user_id)
),

weighted as (
    select
        {% for c in by %}target.{{ c }}, {% endfor %}logged.user_id,
        1.0 / logged.propensity as weight,
        (outcomes.user_id is not null)::integer as reward
    from logged
    join target using (user_id, item_id)
    left join (select distinct user_id, item_id from {{ outcomes }}) outcomes using (user_id, item_id)
),

per_user as (
    -- decimal sums are exact, so the estimate does not change with the order rows arrive in
    select {{ keys }}, users.user_id, coalesce(sum((weight * reward)::decimal(38, 18)), 0) as weighted_reward,
        coalesce(sum(weight::decimal(38, 18)), 0) as weight
    from (select distinct {{ keys }} from target) keys
    cross join users
    left join weighted using ({{ keys }}, user_id)
    group by all
),

slots as (
    select {{ keys }}, count(*) as n_target_slots from target group by all
)

select
    {{ keys }},
    count(*) as n_users,
    any_value(slots.n_target_slots) as n_target_slots,
    sum(weighted_reward) / any_value(slots.n_target_slots) as ips,
    sum(weighted_reward) / nullif(sum(weight), 0) as snips,
    round((sum(weighted_reward) - 1.96 * coalesce(stddev_samp(weighted_reward), 0) * sqrt(count(*)))
        / any_value(slots.n_target_slots), 12) as ips_low,
    round((sum(weighted_reward) + 1.96 * coalesce(stddev_samp(weighted_reward), 0) * sqrt(count(*)))
        / any_value(slots.n_target_slots), 12) as ips_high
from per_user
join slots using ({{ keys }})
group by all
{%- endmacro %}
