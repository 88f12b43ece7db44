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
    # users per item over all events: 10:7, 30:5, 40:3, 50:3, of 11 users
    bits = {n: -math.log2(n / 11) for n in (7, 5, 3)}
    u1 = (bits[5] + bits[3] + bits[3]) / 3
    u3 = (bits[7] + bits[3] + bits[3]) / 3
    assert metric(warehouse, "novelty", 3) == pytest.approx((u1 + u1 + u3) / 3)
    assert metric(warehouse, "novelty", 1) == pytest.approx((bits[5] + bits[5] + bits[7]) / 3)
    stats = dict(rows(warehouse, "select item_id, novelty_bits from features.item_stats"))
    assert stats[10] == pytest.approx(bits[7])
    assert stats[60] == pytest.approx(-math.log2(1 / 11))


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
