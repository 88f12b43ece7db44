"""New items: features.new_items, split_rule new_items, eval.new_item_metrics, the
new_in_genre baseline and reasons in words, on a dataset small enough to work out by hand.

Eight items have events; with new_item_share 0.25 the two whose first event is newest are
new: 80 (first seen day 11), 70 (day 10). Item 90 is in the catalogue with no event at all.
    u1: 10 d1, 20 d2, 70 d10, 30 d11   test 30
    u2: 10 d1, 20 d2, 50 d3, 80 d12    test 80 (new)
    u3: 20 d1, 30 d2, 70 d13           test 70 (new)
    u4: 10 d1, 40 d2, 80 d11, 50 d12   test 50
    u5: 60 d1, 70 d11                  train only (2 events)
    u6: 10 d4, 40 d5; u7: 10 d4, 50 d5; u8: 20 d4, 40 d5
Under new_items the events of 70 and 80 before the test ones are 'unseen' (u1's 70, u4's 80,
u5's 70), so u4's valid event moves back from 80 to 40. Holdout popularity (users per item)
is then 10:5, 20:4, 40:3, 50:2, 30:1, 60:1, 70:0, 80:0, 90:0, and with ks [3, 5]:
    popularity  u2 [40, 30, 60, 70, 80]  80 at rank 5;  u3 [10, 40, 50, 60, 70]  70 at rank 5
    new_in_genre  u3 (top genre Comedy): the Comedy items nobody was seen with, newest first
                  (90, then 70), then popularity: [90, 70, 10, 40, 50]  70 at rank 2
                  u2 (top genre Action): every Action item seen, popularity: 80 at rank 5
"""
from __future__ import annotations

import math

import pytest

from duckrec.cli import main
from sql_fixtures import DAY, REPO, T0, build, connect, make_project, rows

MOVIES = [
    (10, "Alpha (2000)", "Action"),
    (20, "Beta (2001)", "Action|Comedy"),
    (30, "Gamma (2002)", "Comedy"),
    (40, "Delta (2003)", "Drama"),
    (50, "Epsilon (2004)", "Horror"),
    (60, "Zeta (2005)", "Drama"),
    (70, "Eta (2006)", "Comedy|Sci-Fi"),
    (80, "Theta (2007)", "Horror|Sci-Fi"),
    (90, "Iota (2008)", "Comedy|Horror"),
]
EVENTS = {
    1: [(10, 1), (20, 2), (70, 10), (30, 11)],
    2: [(10, 1), (20, 2), (50, 3), (80, 12)],
    3: [(20, 1), (30, 2), (70, 13)],
    4: [(10, 1), (40, 2), (80, 11), (50, 12)],
    5: [(60, 1), (70, 11)],
    6: [(10, 4), (40, 5)], 7: [(10, 4), (50, 5)], 8: [(20, 4), (40, 5)],
}
VALUES = {(5, 60): 3.0, (5, 70): 5.0}  # u5 rates Eta highly (above their own mean)
RATINGS = [(u, item, VALUES.get((u, item), 4.0), T0 + day * DAY) for u, events in EVENTS.items() for item, day in events]
# tags of user 8 (no events on these items, so every purpose sees them)
TAGS = [(8, 30, "Space opera", T0), (8, 70, "space opera", T0), (8, 10, "funny", T0), (8, 20, "funny", T0),
        (8, 30, "funny", T0), (8, 70, "funny", T0)]
VARS = {"ks": [3, 5], "k": 3, "top_interests": 1, "new_item_share": 0.25}


def _project(tmp_path_factory, name, split_rule):
    project = make_project(tmp_path_factory.mktemp(name), RATINGS, MOVIES, TAGS, vars={**VARS, "split_rule": split_rule})
    result = build(project)
    assert result.code == 0, result
    assert " FAIL " not in result.out, result
    return project


def _warehouse(tmp_path_factory, name, split_rule):
    return connect(_project(tmp_path_factory, name, split_rule))


@pytest.fixture(scope="module")
def cold_project(tmp_path_factory):
    return _project(tmp_path_factory, "new_items", "new_items")


@pytest.fixture(scope="module")
def cold(cold_project):
    con = connect(cold_project)
    yield con
    con.close()


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    con = _warehouse(tmp_path_factory, "leave_last_out", "leave_last_out")
    yield con
    con.close()


def new_item_metric(con, name, k, strategy):
    return rows(con, f"select {name} from eval.new_item_metrics where strategy = '{strategy}' and k = {k}")[0][0]


def test_new_items_are_the_newest_share_by_first_event(cold, warm):
    for con in (cold, warm):
        assert rows(con, "select item_id, newness_rank from features.new_items where is_new order by 2") == [(80, 1), (70, 2)]
        assert rows(con, "select count(*) from features.new_items") == [(8,)]  # 90 has no event


def test_new_items_split_hides_the_new_items_events_from_holdout(cold):
    splits = dict(rows(cold, "select user_id, list(split order by position) from features.event_splits group by 1"))
    assert splits[1] == ["train", "valid", "unseen", "test"]
    assert splits[2] == ["train", "train", "valid", "test"]
    assert splits[4] == ["train", "valid", "unseen", "test"]   # the valid event moved back from 80 to 40
    assert splits[5] == ["train", "unseen"]
    assert rows(cold, """select count(*) from features.fit_events
                         where purpose = 'holdout' and item_id in (70, 80)""") == [(0,)]
    assert rows(cold, "select count(*) from features.fit_events where purpose = 'served' and item_id in (70, 80)") == [(5,)]
    # no holdout list learnt that anyone watched them
    assert rows(cold, """select item_id, n_users from features.item_popularity
                         where purpose = 'holdout' and item_id in (70, 80) order by 1""") == [(70, 0), (80, 0)]


def test_new_item_metrics_on_the_hand_worked_lists(cold):
    lists = rows(cold, """select strategy, user_id, list(item_id order by rank) from eval.holdout_recommendations
                          where strategy in ('popularity', 'new_in_genre') and user_id in (2, 3)
                          group by all order by all""")
    assert lists == [("new_in_genre", 2, [40, 30, 60, 70, 80]), ("new_in_genre", 3, [90, 70, 10, 40, 50]),
                     ("popularity", 2, [40, 30, 60, 70, 80]), ("popularity", 3, [10, 40, 50, 60, 70])]
    assert rows(cold, "select distinct split_rule, is_cold, n_users from eval.new_item_metrics") == [("new_items", True, 2)]
    assert new_item_metric(cold, "hit_rate", 3, "popularity") == 0
    assert new_item_metric(cold, "hit_rate", 5, "popularity") == pytest.approx(1.0)
    assert new_item_metric(cold, "ndcg", 5, "popularity") == pytest.approx(1 / math.log2(6))
    assert new_item_metric(cold, "hit_rate", 3, "new_in_genre") == pytest.approx(0.5)
    assert new_item_metric(cold, "ndcg", 3, "new_in_genre") == pytest.approx(1 / math.log2(3) / 2)
    assert new_item_metric(cold, "ndcg", 5, "new_in_genre") == pytest.approx((1 / math.log2(3) + 1 / math.log2(6)) / 2)
    assert new_item_metric(cold, "mrr", 5, "new_in_genre") == pytest.approx((1 / 2 + 1 / 5) / 2)
    # every strategy of eval.metrics, and the figures of eval.user_metrics on the same users
    assert rows(cold, "select count(*) from eval.new_item_metrics") == rows(cold, "select count(*) from eval.metrics")
    assert rows(cold, """select count(*) from eval.new_item_metrics m
                         join (select strategy, k, avg(ndcg) as ndcg, avg(hit) as hit_rate from eval.user_metrics
                               where user_id in (2, 3) group by all) u using (strategy, k)
                         where abs(m.ndcg - u.ndcg) > 1e-9 or abs(m.hit_rate - u.hit_rate) > 1e-9""") == [(0,)]


def test_standard_split_measures_the_same_users_with_the_items_seen(warm):
    assert rows(warm, "select distinct split_rule, is_cold, n_users from eval.new_item_metrics") == [
        ("leave_last_out", False, 2)]
    assert rows(warm, "select count(*) from features.event_splits where split = 'unseen'") == [(0,)]
    assert rows(warm, """select item_id, n_users from features.item_popularity
                         where purpose = 'holdout' and item_id in (70, 80) order by 1""") == [(70, 2), (80, 1)]


def test_new_in_genre_serves_the_item_nobody_has_seen_first(warm):
    # u1's top genre is Comedy (20, 70, 30); 90 has no event at all: the newest arrival
    assert rows(warm, """select item_id, reason from recs.recommendations
                         where strategy = 'new_in_genre' and user_id = 1 and rank = 1""") == [(90, "new in Comedy")]
    # served with a reason in words: its own, or what it shares with an item the user watched
    served = rows(warm, "select distinct reason from recs.served_recommendations where user_id = 1 and item_id = 90")
    assert len(served) == 1 and served[0][0].startswith(("New in Comedy, one of the genres you watch most", "Like "))
    assert rows(warm, "select count(*) from recs.served_recommendations where reason like 'new in %'") == [(0,)]


def test_reasons_say_what_two_items_share(warm):
    # markov serves u5 Gamma after Eta (u1 went 70 -> 30); they share the tags "space opera"
    # (2 items), "funny" (4) and the genre comedy (3 items), rarest first
    assert rows(warm, """select reason from recs.recommendations
                         where strategy = 'markov' and user_id = 5 and item_id = 30""") == [("after Eta",)]
    assert rows(warm, "select distinct reason from recs.served_recommendations where user_id = 5 and item_id = 30") == [
        ("Like Eta (2006), which you rated highly: space opera, comedy, funny",)]
    worded = rows(warm, "select distinct reason from recs.served_recommendations where reason like 'Like %'")
    assert worded and all(":" in r for (r,) in worded)
    assert all(r.count(",") <= 3 for (r,) in worded)   # one after the title, then at most 3 traits


def test_the_strategies_page_shows_the_new_item_metrics(cold_project, cold, capsys):
    (cold_project / "reports").symlink_to(REPO / "reports", target_is_directory=True)
    assert main(["docs", "generate", "--project-dir", str(cold_project)]) == 0
    page = next((cold_project / "target/docs/results").glob("*strateg*.html")).read_text(encoding="utf-8")
    assert "NDCG on every user and on the users whose test item is new (K = 3)" in page
    assert "New-item users (eval.new_item_metrics)" in page and "new_in_genre" in page
