"""eval.* against numbers worked out by hand on a tiny dataset.

Six items, eleven users. Holdout popularity (users per item over non-test events) is
10:6, 20:5, 30:4, 40:3, 50:2, 60:1, so with K = 3 the popularity lists are
    u1 (history 10, 20; test 30): [30, 40, 50]   hit at rank 1
    u2 (history 10, 20; test 50): [30, 40, 50]   hit at rank 3
    u3 (history 20, 30; test 10): [10, 40, 50]   hit at rank 1
Users 4-11 have fewer than 3 events: train only, never evaluated.
"""
from __future__ import annotations

import math

import pytest

from sql_fixtures import DAY, T0, build, connect, make_project, rows

MOVIES = [
    (10, "Alpha (2000)", "Action|Comedy"),
    (20, "Beta (2001)", "Action"),
    (30, "Gamma (2002)", "Comedy|Drama"),
    (40, "Delta (2003)", "Drama"),
    (50, "Epsilon (2004)", "Horror"),
    (60, "Zeta (2005)", "(no genres listed)"),
]
SEQUENCES = {
    1: [10, 20, 30], 2: [10, 20, 50], 3: [20, 30, 10],
    4: [10, 30], 5: [10, 30], 6: [10, 40], 7: [10, 40], 8: [20, 30], 9: [20, 40], 10: [50, 60], 11: [50],
}
RATINGS = [(user, item, 4.0, T0 + user * DAY + i * 60) for user, items in SEQUENCES.items() for i, item in enumerate(items)]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("metrics"), RATINGS, MOVIES,
                           vars={"ks": [1, 2, 3], "top_interests": 1})
    result = build(project)
    assert result.code == 0, result
    con = connect(project)
    yield con
    con.close()


def metric(con, name, k, strategy="popularity"):
    return rows(con, f"select {name} from eval.metrics where strategy = '{strategy}' and k = {k}")[0][0]


def test_popularity_lists_are_the_hand_built_ones(warehouse):
    lists = rows(warehouse, """
        select user_id, list(item_id order by rank) from eval.holdout_recommendations
        where strategy = 'popularity' group by user_id order by user_id""")
    assert lists == [(1, [30, 40, 50]), (2, [30, 40, 50]), (3, [10, 40, 50])]


def test_accuracy_measures(warehouse):
    assert metric(warehouse, "n_users", 3) == 3
    # K=3: hits at ranks 1, 3, 1
    assert metric(warehouse, "hit_rate", 3) == pytest.approx(1.0)
    assert metric(warehouse, "recall", 3) == pytest.approx(1.0)
    assert metric(warehouse, "precision", 3) == pytest.approx(1 / 3)
    assert metric(warehouse, "ndcg", 3) == pytest.approx((1 + 1 / math.log2(4) + 1) / 3)
    assert metric(warehouse, "mrr", 3) == pytest.approx((1 + 1 / 3 + 1) / 3)
    # K=1 and K=2: only the two rank-1 hits count
    for k in (1, 2):
        assert metric(warehouse, "hit_rate", k) == pytest.approx(2 / 3)
        assert metric(warehouse, "ndcg", k) == pytest.approx(2 / 3)
        assert metric(warehouse, "mrr", k) == pytest.approx(2 / 3)
        assert metric(warehouse, "precision", k) == pytest.approx(2 / 3 / k)


def test_coverage(warehouse):
    # distinct items in the first K of the lists / 6 catalogue items
    assert metric(warehouse, "coverage", 1) == pytest.approx(2 / 6)   # 30, 10
    assert metric(warehouse, "coverage", 3) == pytest.approx(4 / 6)   # 30, 40, 50, 10


def test_diversity(warehouse):
    # genre Jaccard: J(30, 40) = |{Drama}| / |{Comedy, Drama}| = 1/2; every other pair here is 0
    # [30, 40, 50] -> 1 - (1/2 + 0 + 0) / 3 = 5/6 (twice); [10, 40, 50] -> 1
    assert metric(warehouse, "diversity", 3) == pytest.approx((5 / 6 + 5 / 6 + 1) / 3)
    # [30, 40] -> 1/2 (twice); [10, 40] -> 1
    assert metric(warehouse, "diversity", 2) == pytest.approx((0.5 + 0.5 + 1) / 3)
    # a single item has no pair
    assert metric(warehouse, "diversity", 1) is None


def test_novelty(warehouse):
    # from the popularity the holdout lists learn from (no test event): users per item
    # 10:6, 30:4, 40:3, 50:2, of the 11 users with a non-test event
    bits = {n: -math.log2(n / 11) for n in (6, 4, 3, 2)}
    u1 = (bits[4] + bits[3] + bits[2]) / 3
    u3 = (bits[6] + bits[3] + bits[2]) / 3
    assert metric(warehouse, "novelty", 3) == pytest.approx((u1 + u1 + u3) / 3)
    assert metric(warehouse, "novelty", 1) == pytest.approx((bits[4] + bits[4] + bits[6]) / 3)
    holdout = dict(rows(warehouse, "select item_id, novelty_bits from features.item_popularity where purpose = 'holdout'"))
    assert holdout[10] == pytest.approx(bits[6])
    assert holdout[60] == pytest.approx(-math.log2(1 / 11))
    # features.item_stats stays the full-history figure (served): 10 has 7 users of 11
    stats = dict(rows(warehouse, "select item_id, novelty_bits from features.item_stats"))
    assert stats[10] == pytest.approx(-math.log2(7 / 11))


def test_new_interest_hit_rate(warehouse):
    # top genre (top_interests=1) of u1 and u2 from history {10, 20}: Action (0.75 vs Comedy 0.25);
    # of u3 from {20, 30}: Action (0.5). Test items: u1 30 (Comedy, Drama) and u2 50 (Horror)
    # share no genre with Action -> new-interest users; u3's 10 (Action, Comedy) does not.
    assert metric(warehouse, "n_new_interest_users", 3) == 2
    assert metric(warehouse, "new_interest_hit_rate", 1) == pytest.approx(1 / 2)   # u1 at rank 1
    assert metric(warehouse, "new_interest_hit_rate", 3) == pytest.approx(2 / 2)   # u2 at rank 3
    top = rows(warehouse, """select user_id, interest, weight from features.user_interests_holdout
                             where is_top and interest_type = 'genre' and user_id <= 3 order by user_id""")
    assert [(u, g) for u, g, _ in top] == [(1, "Action"), (2, "Action"), (3, "Action")]
    assert top[0][2] == pytest.approx(0.75)


def test_metrics_by_segment_add_up(warehouse):
    per_segment = rows(warehouse, """
        select k, sum(n_users), sum(hit_rate * n_users) from eval.metrics_by_segment
        where strategy = 'popularity' group by k order by k""")
    overall = rows(warehouse, "select k, n_users, hit_rate * n_users from eval.metrics where strategy = 'popularity' order by k")
    assert [(k, n, pytest.approx(h)) for k, n, h in per_segment] == overall


def test_splits_leave_last_out(warehouse):
    splits = rows(warehouse, "select user_id, list(split order by position) from features.event_splits group by 1 order by 1")
    assert splits[0] == (1, ["train", "valid", "test"])
    assert dict(splits)[4] == ["train", "train"]
    assert dict(splits)[11] == ["train"]


# --- temporal split: repeated test items, items without genres, users without top genres ---
#
# Cutoff at day 100. u1 rates 30 twice after it (one test item, two test events); u2's test
# item 60 has no genre; u3's history (60, 70) has no genre, so u3 has no top genres; u4's test
# item 50 (Horror) is outside its top genre Action. Served lists k = 2, holdout lists 3.
TEMPORAL_MOVIES = MOVIES + [(70, "Eta (2006)", "(no genres listed)")]
CUTOFF = T0 + 100 * DAY
BEFORE = {1: [10, 20], 2: [10, 20], 3: [60, 70], 4: [10, 20], 5: [10, 30], 6: [20, 40], 7: [10, 40], 8: [30, 50]}
AFTER = {1: [30, 30], 2: [60], 3: [50], 4: [50]}
TEMPORAL_RATINGS = (
    [(u, item, 4.0, T0 + u * DAY + i * 60) for u, items in BEFORE.items() for i, item in enumerate(items)]
    + [(u, item, 4.0, CUTOFF + (i + 1) * DAY) for u, items in AFTER.items() for i, item in enumerate(items)]
)


@pytest.fixture(scope="module")
def temporal(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("temporal"), TEMPORAL_RATINGS, TEMPORAL_MOVIES, vars={
        "ks": [1, 3], "k": 2, "top_interests": 1, "split_rule": "temporal",
        "temporal_cutoff": "2017-10-22 02:40:00"})  # T0 + 100 days
    result = build(project)
    assert result.code == 0, result
    assert " FAIL " not in result.out, result
    con = connect(project)
    yield con
    con.close()


def test_a_test_item_rated_twice_is_one_test_item(temporal):
    per_user = rows(temporal, """select distinct user_id, n_test_items from eval.user_metrics order by user_id""")
    assert per_user == [(1, 1), (2, 1), (3, 1), (4, 1)]
    worst = rows(temporal, "select max(ndcg), max(recall), max(n_hits) from eval.user_metrics")[0]
    assert worst[0] <= 1 + 1e-9 and worst[1] <= 1 and worst[2] <= 1


def test_new_interest_needs_a_genre_and_top_genres(temporal):
    flags = rows(temporal, """select distinct user_id, is_new_interest_user from eval.user_metrics order by user_id""")
    # u1: 30 (Comedy, Drama) vs top Action: new; u2: 60 has no genre; u3 has no top genre; u4: 50 Horror
    assert flags == [(1, True), (2, False), (3, False), (4, True)]
    assert metric(temporal, "n_new_interest_users", 3) == 2
    # exploration uses the same rule: it may never probe an item without genres, nor for u3
    probed = rows(temporal, """
        select count(*) filter (where is_new_interest and item_id in (60, 70)),
               count(*) filter (where is_new_interest and purpose = 'holdout' and user_id = 3),
               count(*) filter (where is_new_interest)
        from recs.lm_candidate_interests""")[0]
    assert probed[:2] == (0, 0) and probed[2] > 0
    assert rows(temporal, """select count(*) from recs.lm_explore_lists
                             where is_exploration and (item_id in (60, 70) or (purpose = 'holdout' and user_id = 3))""") == [(0,)]


def test_var_k_sets_the_served_list_length(temporal):
    served = rows(temporal, "select distinct strategy, max(rank) over (partition by strategy) from recs.recommendations order by 1")
    assert {length for _, length in served} == {2} and len(served) == 10  # every strategy, lm_neural, new_in_genre and text_knn included
    assert rows(temporal, "select max(rank) from eval.holdout_recommendations") == [(3,)]


def test_bootstrap_intervals_on_three_users(warehouse):
    """Popularity hits all three users at K = 3, u1 and u3 at K = 1 (ranks 1, 3, 1). A
    resample draws each user Poisson(1) times: one without u2 (p = 0.32) scores a perfect
    hit rate, one with u2 alone (p = 0.09) scores 0 and NDCG 0.5; both happen far more often
    than the 2.5% of the 200 resamples an interval leaves out at each end."""
    def interval(name, k):
        return rows(warehouse, f"select {name}_low, {name}, {name}_high from eval.metrics "
                               f"where strategy = 'popularity' and k = {k}")[0]

    assert interval("hit_rate", 3) == (1.0, 1.0, 1.0)
    low, point, high = interval("hit_rate", 1)
    assert (low, high) == (0.0, 1.0) and point == pytest.approx(2 / 3)
    low, point, high = interval("ndcg", 3)
    assert (low, high) == (0.5, 1.0) and point == pytest.approx((1 + 0.5 + 1) / 3)
    low, point, high = interval("coverage", 3)
    assert low <= point <= high and point == pytest.approx(4 / 6)


def test_coverage_intervals_count_each_resample_as_the_plain_join_does(warehouse):
    """eval.metrics counts a resample's distinct items from per-user bitmasks of the
    resamples that leave the user out (64 to a chunk; 200 resamples span four chunks). The
    reference here is the definition: every (user, listed item, resample) row with the
    user drawn, distinct items counted per resample, the same seeded Poisson draws (three
    users: 5% of the resamples draw none of them, and those have no figures at all)."""
    expected = rows(warehouse, """
        with per_user as (select * from eval.user_metrics),
        weights as (
            select replicate.range as replicate, users.user_id,
                hash(42, replicate.range, users.user_id) / 18446744073709551616.0 as u
            from (select distinct user_id from per_user) users cross join range(200) replicate
        ),
        covered as (
            select per_user.strategy, per_user.k, replicates.replicate, count(distinct lists.item_id) as n
            from per_user
            cross join (select distinct replicate from weights) replicates
            left join weights on weights.user_id = per_user.user_id and weights.replicate = replicates.replicate
                and weights.u >= 0.3678794
            left join eval.holdout_recommendations lists
                on lists.strategy = per_user.strategy and lists.user_id = weights.user_id and lists.rank <= per_user.k
            group by all
            having count(weights.user_id) > 0  -- a resample that draws no user has no mean: left out
        ),
        catalogue as (select count(*) as n_items from staging.items)
        select strategy, k,
            round(any_value(metrics.coverage) + quantile_cont(n, 0.025) / any_value(n_items) - avg(n) / any_value(n_items), 12),
            round(any_value(metrics.coverage) + quantile_cont(n, 0.975) / any_value(n_items) - avg(n) / any_value(n_items), 12)
        from covered join eval.metrics metrics using (strategy, k) cross join catalogue
        group by all order by all""")
    got = rows(warehouse, "select strategy, k, coverage_low, coverage_high from eval.metrics order by all")
    assert len(got) == len(expected) > 20
    for (s, k, low, high), (s2, k2, low2, high2) in zip(got, expected):
        assert (s, k) == (s2, k2)
        assert low == pytest.approx(low2, abs=1e-12) and high == pytest.approx(high2, abs=1e-12), (s, k)
    # a resample without some users shows fewer items: the intervals are not all one point
    assert any(low < high for _, _, low, high in got)
