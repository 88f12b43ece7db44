-- Every measure of the evaluation protocol per strategy x evaluated user x K, from the
-- holdout lists (eval.holdout_recommendations) and the users' test events. eval.metrics and
-- eval.metrics_by_segment average these rows, so any figure there can be traced to users here.
--   n_hits           test items among the first K of the list
--   hit              1 if n_hits > 0 (hit_rate = recall with one test item)
--   precision        n_hits / K
--   recall           n_hits / n_test_items
--   ndcg             sum over hits of 1 / log2(rank + 1), divided by the same sum for a perfect
--                    list (min(n_test_items, K) hits at ranks 1..)
--   reciprocal_rank  1 / rank of the first hit, 0 without one
--   diversity        1 - mean genre Jaccard similarity over the pairs of the first K items
--                    (two items without genres count as dissimilar); null under 2 items
--   novelty          mean of features.item_stats.novelty_bits over the first K items
--   is_new_interest_user / new_interest_hit: the user has a test item sharing no genre with
--                    their top var('top_interests') genres of features.user_interests_holdout,
--                    and whether one of those items is among the first K
-- A user without a list for a strategy counts with no hits.
with lists as (
    select strategy, user_id, rank, item_id from {{ ref('holdout_recommendations') }}
),

tests as (
    select user_id, item_id from {{ ref('event_splits') }} where split = 'test'
),

items as (
    select item_id, genres from {{ ref('items') }}
),

cutoffs as (
    select unnest({{ var('ks', [10]) }}::integer[]) as k
),

top_genres as (
    select user_id, list(interest) as genres
    from {{ ref('user_interests_holdout') }}
    where interest_type = 'genre' and is_top
    group by user_id
),

test_items as (
    select
        tests.user_id,
        tests.item_id,
        len(list_intersect(coalesce(items.genres, []), coalesce(top_genres.genres, []))) = 0 as is_new_interest
    from tests
    left join items using (item_id)
    left join top_genres using (user_id)
),

evaluated_users as (
    select
        user_id,
        count(*) as n_test_items,
        bool_or(is_new_interest) as is_new_interest_user
    from test_items
    group by user_id
),

strategies as (
    select distinct strategy from lists
),

grid as (
    select strategies.strategy, evaluated_users.*, cutoffs.k
    from strategies
    cross join evaluated_users
    cross join cutoffs
),

list_hits as (
    select lists.strategy, lists.user_id, lists.rank, test_items.is_new_interest
    from lists
    join test_items using (user_id, item_id)
),

accuracy as (
    select
        grid.strategy,
        grid.user_id,
        grid.k,
        grid.n_test_items,
        grid.is_new_interest_user,
        count(list_hits.rank) as n_hits,
        coalesce(sum(1 / log2(list_hits.rank + 1)), 0) as dcg,
        coalesce(1 / min(list_hits.rank), 0) as reciprocal_rank,
        coalesce(bool_or(list_hits.is_new_interest), false) as new_interest_hit
    from grid
    left join list_hits
        on list_hits.strategy = grid.strategy
        and list_hits.user_id = grid.user_id
        and list_hits.rank <= grid.k
    group by all
),

list_genres as (
    select lists.strategy, lists.user_id, lists.rank, items.genres
    from lists
    join items using (item_id)
),

pair_similarity as (
    select
        a.strategy,
        a.user_id,
        cutoffs.k,
        case
            when len(list_distinct(list_concat(a.genres, b.genres))) = 0 then 0.0
            else len(list_intersect(a.genres, b.genres))
                / len(list_distinct(list_concat(a.genres, b.genres)))
        end as jaccard
    from list_genres a
    join list_genres b on b.strategy = a.strategy and b.user_id = a.user_id and a.rank < b.rank
    join cutoffs on b.rank <= cutoffs.k
),

diversity as (
    select strategy, user_id, k, 1 - avg(jaccard) as diversity
    from pair_similarity
    group by all
),

novelty as (
    select lists.strategy, lists.user_id, cutoffs.k, avg(item_stats.novelty_bits) as novelty
    from lists
    join cutoffs on lists.rank <= cutoffs.k
    join {{ ref('item_stats') }} item_stats using (item_id)
    group by all
),

segments as (
    select user_id, rfm_segment from {{ ref('user_rfm') }}
)

select
    accuracy.strategy,
    accuracy.user_id,
    accuracy.k::integer as k,
    segments.rfm_segment,
    accuracy.n_test_items,
    accuracy.n_hits,
    (accuracy.n_hits > 0)::integer as hit,
    accuracy.n_hits / accuracy.k as precision,
    accuracy.n_hits / accuracy.n_test_items as recall,
    accuracy.dcg / list_sum(
        list_transform(range(1, least(accuracy.n_test_items, accuracy.k) + 1), lambda i: 1 / log2(i + 1))
    ) as ndcg,
    accuracy.reciprocal_rank::double as reciprocal_rank,
    diversity.diversity,
    novelty.novelty,
    accuracy.is_new_interest_user,
    accuracy.is_new_interest_user and accuracy.new_interest_hit as new_interest_hit
from accuracy
left join diversity using (strategy, user_id, k)
left join novelty using (strategy, user_id, k)
left join segments using (user_id)
