"""Each baseline on a tiny dataset whose lists are worked out by hand (served lists, K = 3)."""
from __future__ import annotations

import math

import pytest

from sql_fixtures import DAY, T0, build, connect, make_project, rows


def served(con, strategy, user_id):
    return rows(con, f"""select item_id, score, reason from recs.recommendations
                         where strategy = '{strategy}' and user_id = {user_id} order by rank""")


def built(tmp_path, sequences, movies, **vars):
    ratings = [(u, item, 4.0, T0 + u * DAY + i * 60) for u, items in sequences.items() for i, item in enumerate(items)]
    project = make_project(tmp_path, ratings, movies, vars={"ks": [3], "k": 3, **vars})
    result = build(project)
    assert result.code == 0, result
    return connect(project)


MOVIES = [(i, f"M{i} (1999)", "Drama") for i in range(101, 107)]


def test_markov_follows_the_last_item_then_fills_with_popularity(tmp_path):
    # transitions out of 101: ->102 twice (users 1, 2), ->103 once (user 3)
    con = built(tmp_path, {1: [101, 102, 103], 2: [101, 102, 104], 3: [101, 103, 105], 4: [106, 101]}, MOVIES)
    # user 4's last item is 101; served popularity (users): 101:4, 102:2, 103:2, 104..106:1,
    # so the fill after 102 and 103 is 104
    assert served(con, "markov", 4) == [
        (102, pytest.approx(2 / 3), "after M101"),
        (103, pytest.approx(1 / 3), "after M101"),
        (104, 0.0, "popular now"),
    ]
    assert [r[0] for r in served(con, "popularity", 4)] == [102, 103, 104]
    # holdout: user 1 is scored without its test event 103; its last item is 102, which has no
    # successor outside test steps (102->103 and 102->104 are tests), so the list is popularity
    # over non-test events: 101:4 (history), 103:1, 106:1, then the untouched 104, 105
    holdout = rows(con, "select item_id, reason from eval.holdout_recommendations "
                        "where strategy = 'markov' and user_id = 1 order by rank")
    assert holdout == [(103, "popular now"), (106, "popular now"), (104, "popular now")]


# pairs per bucket 1: every bucket of items holds at most one ordered pair, so each item's
# neighbours are counted in a bucket of their own; block rows 1: each user is scored in a block
# of their own; the tables are the same
@pytest.mark.parametrize("pairs_per_bucket, block_rows", [(50_000_000, 1 << 23), (1, 1)])
def test_item_knn_sums_cosine_similarities(tmp_path, pairs_per_bucket, block_rows):
    movies = [(1, "A (2001)", "Drama"), (2, "B (2002)", "Drama"), (3, "C (2003)", "Drama"), (4, "D (2004)", "Drama")]
    # users per item: A 3 (users 1, 2, 9), B 2, C 2, D 1; co-occurrence A-B 2, A-C 1, B-C 1, C-D 1
    con = built(tmp_path, {1: [1, 2], 2: [1, 2, 3], 3: [3, 4], 9: [1]}, movies,
                knn_min_co_users=1, knn_max_user_events=None, knn_pairs_per_bucket=pairs_per_bucket,
                knn_block_rows=block_rows)
    assert rows(con, "select item_id, neighbour_id, similarity from recs.item_knn_neighbours "
                     "where purpose = 'served' order by item_id, similarity desc, neighbour_id") == [
        (1, 2, pytest.approx(2 / math.sqrt(6))), (1, 3, pytest.approx(1 / math.sqrt(6))),
        (2, 1, pytest.approx(2 / math.sqrt(6))), (2, 3, pytest.approx(1 / 2)),
        (3, 4, pytest.approx(1 / math.sqrt(2))), (3, 2, pytest.approx(1 / 2)), (3, 1, pytest.approx(1 / math.sqrt(6))),
        (4, 3, pytest.approx(1 / math.sqrt(2))),
    ]
    assert served(con, "item_knn", 9) == [
        (2, pytest.approx(2 / math.sqrt(3 * 2)), "like A"),
        (3, pytest.approx(1 / math.sqrt(3 * 2)), "like A"),
        (4, 0.0, "popular now"),   # no similarity to A: filled from popularity
    ]
    # user 3 (C, D): B scores sim(B, C) = 1/sqrt(2*2), A scores sim(A, C) = 1/sqrt(3*2)
    assert served(con, "item_knn", 3)[:2] == [
        (2, pytest.approx(1 / 2), "like C"),
        (1, pytest.approx(1 / math.sqrt(6)), "like C"),
    ]


def test_item_knn_counts_only_each_users_most_recent_items(tmp_path):
    movies = [(1, "A (2001)", "Drama"), (2, "B (2002)", "Drama"), (3, "C (2003)", "Drama"), (4, "D (2004)", "Drama")]
    # knn_max_user_events 2: user 1's A falls out of its window (B, C are its last two), so
    # A-B and A-C are not pairs of user 1; user 2 (A, B) still pairs A-B
    con = built(tmp_path, {1: [1, 2, 3], 2: [1, 2], 9: [4]}, movies, knn_min_co_users=1, knn_max_user_events=2)
    assert rows(con, "select item_id, neighbour_id, similarity from recs.item_knn_neighbours "
                     "where purpose = 'served' order by item_id, neighbour_id") == [
        (1, 2, pytest.approx(1 / math.sqrt(1 * 2))),
        (2, 1, pytest.approx(1 / math.sqrt(2 * 1))), (2, 3, pytest.approx(1 / math.sqrt(2 * 1))),
        (3, 2, pytest.approx(1 / math.sqrt(1 * 2))),
    ]


def test_item_knn_threshold_drops_rare_pairs(tmp_path):
    movies = [(1, "A (2001)", "Drama"), (2, "B (2002)", "Drama"), (3, "C (2003)", "Drama"), (4, "D (2004)", "Drama")]
    con = built(tmp_path, {1: [1, 2], 2: [1, 2, 3], 3: [3, 4], 9: [1]}, movies, knn_min_co_users=2)
    # only A-B is seen by two users
    assert [r[:1] + r[2:] for r in served(con, "item_knn", 9)] == [(2, "like A"), (3, "popular now"), (4, "popular now")]


def test_popularity_ties_break_by_item_id_and_history_is_excluded(tmp_path):
    con = built(tmp_path, {1: [101, 102], 2: [103, 104], 3: [105], 4: [106, 105]}, MOVIES)
    # 105 has two users, every other item one: 105 first, then item id order
    assert [r[0] for r in served(con, "popularity", 3)] == [101, 102, 103]
    assert [r[0] for r in served(con, "popularity", 1)] == [105, 103, 104]
    assert rows(con, "select distinct reason, is_exploration from recs.recommendations where strategy = 'popularity'") == [
        ("popular now", False)]
