-- Every measure of the evaluation protocol per strategy x evaluated user x K, from the
-- holdout lists (eval.holdout_recommendations) and the users' test events, with the user's
-- RFM segment from the events the holdout lists see (features.user_rfm_by_purpose, 'holdout'),
-- the segment that set the user's exploration share. eval.metrics and eval.metrics_by_segment average these rows, so any figure
-- there can be traced to users here. The measures and their rules: user_measures in
-- sql/macros/measures.sql (eval.tradeoff measures its lists with the same macro).
with measured as (
    {{ user_measures(ref('holdout_recommendations'), ['strategy'], var('ks', [10])) }}
),

segments as (
    select user_id, rfm_segment from {{ ref('user_rfm_by_purpose') }} where purpose = 'holdout'
)

select
    measured.strategy,
    measured.user_id,
    measured.k,
    segments.rfm_segment,
    measured.n_test_items,
    measured.n_hits,
    measured.hit,
    measured.precision,
    measured.recall,
    measured.ndcg,
    measured.reciprocal_rank,
    measured.diversity,
    measured.novelty,
    measured.is_new_interest_user,
    measured.new_interest_hit
from measured
left join segments using (user_id)
