{#
  Bootstrap intervals over users for the measures of `user_rows` (eval.user_metrics' columns)
  per (list keys, K): hit_rate, ndcg, new_interest_hit_rate and coverage (distinct items in
  the first K of the resampled users' lists of `lists` / catalogue items).

  Each of var('bootstrap_replicates') replicates draws every user w ~ Poisson(1) times (the
  Poisson bootstrap: for hundreds of users it behaves as the multinomial one, and needs no
  shuffle), from a hash of (var seed, replicate, user): a fixed seed gives the same
  intervals. A user's draws are the same for every strategy and K, so two strategies are
  compared on the same resamples. The interval of a mean is the central var('bootstrap_level')
  share of the replicates' values (percentile method). Coverage is a count of distinct items,
  which a resample (about 63% of the users) undercounts: its interval is the replicates'
  central share shifted so that their mean falls on the full-sample coverage. Point
  estimates stay the full-sample ones.
#}
{% macro bootstrap_intervals(user_rows, lists, list_keys) -%}
{%- set keys = list_keys + ['k'] -%}
{%- set level = var('bootstrap_level', 0.95) | float -%}
{%- set low = (1 - level) / 2 -%}
{%- set high = 1 - (1 - level) / 2 -%}
with per_user as (
    select * from {{ user_rows }}
),

catalogue as (
    select count(*) as n_items from {{ ref('items') }}
),

draws as (
    select
        replicate.range as replicate,
        users.user_id,
        hash({{ var('seed', 42) | int }}, replicate.range, users.user_id) / 18446744073709551616.0 as u
    from (select distinct user_id from per_user) users
    cross join range({{ var('bootstrap_replicates', 200) | int }}) replicate
),

-- the inverse of Poisson(1)'s distribution function
weights as (
    select replicate, user_id,
        case when u < 0.3678794 then 0 when u < 0.7357589 then 1 when u < 0.9196986 then 2
             when u < 0.9810118 then 3 when u < 0.9963402 then 4 when u < 0.9994058 then 5
             when u < 0.9999168 then 6 when u < 0.9999898 then 7 else 8 end as w
    from draws
),

means as (
    select
        {{ keys | join(', ') }},
        weights.replicate,
        sum(weights.w * per_user.hit::integer) / sum(weights.w) as hit_rate,
        sum(weights.w * per_user.ndcg) / sum(weights.w) as ndcg,
        sum(weights.w * per_user.new_interest_hit::integer) filter (where per_user.is_new_interest_user)
            / nullif(sum(weights.w) filter (where per_user.is_new_interest_user), 0) as new_interest_hit_rate
    from per_user
    join weights using (user_id)
    where weights.w > 0
    group by all
),

-- a resample leaves an item out when it leaves out every user the item is shown to: each
-- user's left-out resamples (w = 0) as bitmasks of 64 replicates, and an item's as the AND of
-- its users' masks, so no row is made per (user, item, replicate)
zero_masks as (
    select user_id, replicate // 64 as chunk,
        bit_or(case when w = 0 then 1::ubigint << (replicate % 64) else 0::ubigint end) as left_out
    from weights
    group by all
),

shown as (
    select distinct
        {% for key in keys %}per_user.{{ key }}, {% endfor %}lists.item_id, per_user.user_id
    from per_user
    join {{ lists }} lists using ({{ (list_keys + ['user_id']) | join(', ') }})
    where lists.rank <= per_user.k
),

shown_items as (
    select {{ keys | join(', ') }}, count(distinct item_id) as n_items
    from shown
    group by all
),

full_lists as (
    select {{ keys | join(', ') }}, shown_items.n_items / catalogue.n_items as coverage
    from shown_items
    cross join catalogue
),

items_left_out as (
    select {{ keys | join(', ') }}, shown.item_id, zero_masks.chunk, bit_and(zero_masks.left_out) as left_out
    from shown
    join zero_masks using (user_id)
    group by all
    having bit_and(zero_masks.left_out) <> 0
),

left_out as (
    select {{ keys | join(', ') }}, chunk * 64 + bit.range as replicate, count(*) as n_items
    from items_left_out
    cross join range(64) bit
    where (left_out >> bit.range) & 1 = 1
    group by all
),

covered as (
    select
        {% for key in keys %}shown_items.{{ key }}, {% endfor %}replicates.replicate,
        shown_items.n_items - coalesce(left_out.n_items, 0) as n_items
    from shown_items
    cross join (select distinct replicate from weights) replicates
    left join left_out using ({{ keys | join(', ') }}, replicate)
)

select
    {% for key in keys %}means.{{ key }}, {% endfor %}
    {%- for measure in ['hit_rate', 'ndcg', 'new_interest_hit_rate'] %}
    round(quantile_cont(means.{{ measure }}, {{ low }}), 12) as {{ measure }}_low,
    round(quantile_cont(means.{{ measure }}, {{ high }}), 12) as {{ measure }}_high,
    {%- endfor %}
    -- a resample holds about 63% of the users, so its distinct items fall short of the full
    -- lists' coverage: the resamples' spread is kept and centred on the full-sample figure
    round(any_value(full_lists.coverage) + quantile_cont(coalesce(covered.n_items, 0), {{ low }}) / any_value(catalogue.n_items)
          - avg(coalesce(covered.n_items, 0)) / any_value(catalogue.n_items), 12) as coverage_low,
    round(any_value(full_lists.coverage) + quantile_cont(coalesce(covered.n_items, 0), {{ high }}) / any_value(catalogue.n_items)
          - avg(coalesce(covered.n_items, 0)) / any_value(catalogue.n_items), 12) as coverage_high
from means
cross join catalogue
left join covered using ({{ keys | join(', ') }}, replicate)
left join full_lists using ({{ keys | join(', ') }})
group by {% for key in keys %}means.{{ key }}{{ ', ' if not loop.last }}{% endfor %}
{%- endmacro %}
