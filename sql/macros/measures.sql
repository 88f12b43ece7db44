{#
  The evaluation protocol's per-user measures, defined once. Each row of the result is one
  (list key columns `by`, evaluated user, K in `ks`), measured on the lists of `lists` (a
  relation with the columns `by`, user_id, rank, item_id) against the users' test events:
    n_test_items     the user's distinct test items (a set: an item in the test split twice, as the
                     temporal rule allows, is one item)
    n_hits           test items among the first K of the list (a list holds an item once)
    hit              1 if n_hits > 0 (hit_rate = recall with one test item)
    precision        n_hits / K
    recall           n_hits / n_test_items
    ndcg             sum over hits of 1 / log2(rank + 1), divided by the same sum for a perfect
                     list (min(n_test_items, K) hits at ranks 1..)
    reciprocal_rank  1 / rank of the first hit, 0 without one
    diversity        1 - mean genre Jaccard similarity over the pairs of the first K items
                     (two items without genres count as dissimilar); null under 2 items
    novelty          mean novelty_bits of the first K items, from the popularity the holdout
                     lists learn from (features.item_popularity, purpose 'holdout')
    is_new_interest_user / new_interest_hit: the user has a test item that is a new interest
                     (new_interests in sql/macros/interests.sql, the rule exploration uses, over
                     the holdout interests of features.fit_interests), and whether one of those
                     items is among the first K
  Every evaluated user (a user with test events; with `users`, a relation of user_id, only
  those of them) gets a row for every list key in `lists`; a user without a list there counts
  with no hits.
  Used by eval.user_metrics (lists: eval.holdout_recommendations, by ['strategy'], var ks)
  and eval.tradeoff (lists: eval.tradeoff_lists, by ['strategy', 'setting'], rerank.tradeoff_k).
#}
{% macro user_measures(lists, by, ks, users=none) -%}
with lists as (
    -- list_key: the `by` columns as one struct column, so the steps below name one column
    select
        struct_pack({% for c in by %}{{ c }} := {{ c }}{{ ', ' if not loop.last }}{% endfor %}) as list_key,
        user_id, rank, item_id
    from {{ lists }}
    where rank <= {{ ks | max }}
),

tests as (
    select distinct 'holdout' as purpose, user_id, item_id from {{ ref('event_splits') }} where split = 'test'
),

items as (
    -- the catalogue's interests (features.item_interests): genres, or clusters without labels
    select item_id, interests as genres from {{ ref('item_interests') }}
),

cutoffs as (
    select unnest({{ ks }}::integer[]) as k
),

test_items as (
    {{ new_interests('tests', ref('fit_interests'), ref('item_interests')) }}
),

evaluated_users as (
    select
        user_id,
        count(*) as n_test_items,
        bool_or(is_new_interest) as is_new_interest_user
    from test_items
    {%- if users is not none %}
    where user_id in (select user_id from {{ users }})
    {%- endif %}
    group by user_id
),

list_keys as (
    select distinct list_key from lists
),

grid as (
    select list_keys.list_key, evaluated_users.*, cutoffs.k
    from list_keys
    cross join evaluated_users
    cross join cutoffs
),

list_hits as (
    select lists.list_key, lists.user_id, lists.rank, test_items.is_new_interest
    from lists
    join test_items using (user_id, item_id)
),

accuracy as (
    select
        grid.list_key,
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
        on list_hits.list_key = grid.list_key
        and list_hits.user_id = grid.user_id
        and list_hits.rank <= grid.k
    group by all
),

list_genres as (
    select lists.list_key, lists.user_id, lists.rank, items.genres
    from lists
    join items using (item_id)
),

pair_similarity as (
    select
        a.list_key,
        a.user_id,
        cutoffs.k,
        case
            when len(list_distinct(list_concat(a.genres, b.genres))) = 0 then 0.0
            else len(list_intersect(a.genres, b.genres))
                / len(list_distinct(list_concat(a.genres, b.genres)))
        end as jaccard
    from list_genres a
    join list_genres b
        on b.list_key = a.list_key
        and b.user_id = a.user_id
        and a.rank < b.rank
    join cutoffs on b.rank <= cutoffs.k
),

diversity as (
    -- averaged as decimals: the sum is exact, so the order a parallel scan feeds it cannot
    -- change a bit of the result (a float sum differs in its last bits from run to run)
    select list_key, user_id, k, round(1 - avg(jaccard::decimal(38, 18)), 12) as diversity
    from pair_similarity
    group by all
),

novelty as (
    select lists.list_key, lists.user_id, cutoffs.k, round(avg(popularity.novelty_bits::decimal(38, 18)), 12) as novelty
    from lists
    join cutoffs on lists.rank <= cutoffs.k
    join {{ ref('item_popularity') }} popularity
        on popularity.purpose = 'holdout' and popularity.item_id = lists.item_id
    group by all
)

select
    unnest(accuracy.list_key),  -- back to the `by` columns
    accuracy.user_id,
    accuracy.k::integer as k,
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
left join diversity using (list_key, user_id, k)
left join novelty using (list_key, user_id, k)
{%- endmacro %}


{#
  The per-user measures (`user_rows`, the columns of user_measures plus any `by` columns)
  averaged per (by, list keys, K) over the evaluated users (diversity and novelty over users
  with a list), plus coverage: distinct items in the first K of the group's lists of `lists`
  / items in the catalogue (staging.items). `list_keys` are the columns that join a user row
  to its list in `lists` (with user_id); `by` are extra grouping columns of `user_rows` only.
  eval.metrics and eval.metrics_by_segment (sql/eval/) are this macro over eval.user_metrics and
  eval.holdout_recommendations, eval.tradeoff over the trade-off lists.
#}
{% macro aggregate_measures(user_rows, lists, list_keys, by=[]) -%}
{%- set keys = by + list_keys + ['k'] -%}
with per_user as (
    select * from {{ user_rows }}
),

catalogue as (
    select count(*) as n_items from {{ ref('items') }}
),

recommended as (
    select
        {{ keys | join(', ') }},
        count(distinct lists.item_id) as n_recommended_items
    from per_user
    join {{ lists }} lists using ({{ (list_keys + ['user_id']) | join(', ') }})
    where lists.rank <= per_user.k
    group by all
),

averaged as (
    select
        {{ keys | join(', ') }},
        count(*) as n_users,
        round(avg(hit::decimal(38, 18)), 12) as hit_rate,
        round(avg(precision::decimal(38, 18)), 12) as precision,
        round(avg(recall::decimal(38, 18)), 12) as recall,
        round(avg(ndcg::decimal(38, 18)), 12) as ndcg,
        round(avg(reciprocal_rank::decimal(38, 18)), 12) as mrr,
        round(avg(diversity::decimal(38, 18)), 12) as diversity,
        round(avg(novelty::decimal(38, 18)), 12) as novelty,
        round(avg(new_interest_hit::integer::decimal(38, 18)) filter (where is_new_interest_user), 12) as new_interest_hit_rate,
        count(*) filter (where is_new_interest_user) as n_new_interest_users
    from per_user
    group by {{ keys | join(', ') }}
)

select
    {{ keys | join(', ') }},
    averaged.n_users,
    averaged.hit_rate,
    averaged.precision,
    averaged.recall,
    averaged.ndcg,
    averaged.mrr,
    coalesce(recommended.n_recommended_items, 0) / catalogue.n_items as coverage,
    averaged.diversity,
    averaged.novelty,
    averaged.new_interest_hit_rate,
    averaged.n_new_interest_users
from averaged
cross join catalogue
left join recommended using ({{ keys | join(', ') }})
{%- endmacro %}
