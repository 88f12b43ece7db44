-- What re-ranking costs in accuracy and what it buys in discovery: the lists of every setting
-- of the re-rankers' grid (eval.tradeoff_lists) measured at K = var rerank.tradeoff_k with the
-- rules of eval.user_metrics / eval.metrics (sql/macros/measures.sql), plus the share of the
-- shown slots that explore, with bootstrap intervals. One row per strategy and setting; the is_default rows equal
-- eval.metrics at that K on a log of at most var rerank.tradeoff_users holdout users (above it
-- the curve is measured on a seeded sample of them, eval.tradeoff_lists).
with tradeoff_lists as (
    select * from {{ ref('tradeoff_lists') }}
),

tradeoff_users as (
    select distinct user_id from tradeoff_lists
),

settings as (
    select distinct strategy, parameter, value, setting, is_default from tradeoff_lists
),

user_rows as (
    -- the users whose lists were rebuilt (all holdout users, or var rerank.tradeoff_users of them)
    {{ user_measures('tradeoff_lists', ['strategy', 'setting'], [var('rerank', {}).get('tradeoff_k', 10)],
                     users='tradeoff_users') }}
),

measured as (
    {{ aggregate_measures('user_rows', 'tradeoff_lists', ['strategy', 'setting']) }}
),

-- bootstrap intervals over users, as eval.metrics' (sql/macros/intervals.sql): every setting
-- is measured on the same resamples
intervals as (
    {{ bootstrap_intervals('user_rows', 'tradeoff_lists', ['strategy', 'setting']) }}
),

exploration as (
    select
        user_rows.strategy,
        user_rows.setting,
        user_rows.k,
        avg(lists.is_exploration::integer) as exploration_share
    from user_rows
    join tradeoff_lists lists
        on lists.strategy = user_rows.strategy
        and lists.setting = user_rows.setting
        and lists.user_id = user_rows.user_id
        and lists.rank <= user_rows.k
    group by all
)

select
    settings.strategy,
    settings.parameter,
    settings.value,
    settings.setting,
    settings.is_default,
    measured.k::integer as k,
    measured.n_users,
    measured.ndcg,
    measured.hit_rate,
    measured.coverage,
    measured.diversity,
    measured.novelty,
    measured.new_interest_hit_rate,
    measured.n_new_interest_users,
    exploration.exploration_share::double as exploration_share,
    intervals.ndcg_low,
    intervals.ndcg_high,
    intervals.hit_rate_low,
    intervals.hit_rate_high,
    intervals.coverage_low,
    intervals.coverage_high,
    intervals.new_interest_hit_rate_low,
    intervals.new_interest_hit_rate_high
from settings
join measured using (strategy, setting)
left join intervals using (strategy, setting, k)
left join exploration using (strategy, setting, k)
order by settings.strategy, settings.parameter nulls first, settings.value nulls last
