-- Every per-user measure of eval.user_metrics lies in its range, whatever the split rule:
-- test items are a set (n_hits <= min(K, n_test_items)), the ratio measures lie in [0, 1],
-- novelty (bits) is at least 0, and a new-interest hit needs a new-interest user.
-- Returns the offending rows.
select *
from {{ ref('user_metrics') }}
where not (
    n_test_items >= 1
    and n_hits between 0 and least(k, n_test_items)
    and hit in (0, 1)
    and precision between 0 and 1
    and recall between 0 and 1
    and ndcg between 0 and 1 + 1e-9
    and reciprocal_rank between 0 and 1
    and coalesce(diversity between 0 and 1, true)
    and coalesce(novelty >= 0, true)
    and (not new_interest_hit or is_new_interest_user)
    and (new_interest_hit <= (hit = 1))
)
