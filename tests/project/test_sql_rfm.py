"""RFM scores and segments on hand-made users, and the temporal split rule."""
from __future__ import annotations

import pytest

from sql_fixtures import DAY, T0, build, connect, make_project, rows

MOVIES = [(i, f"Movie {i} (2000)", "Drama|Comedy") for i in range(1, 11)]


def user_events(user, last_day, n_days, value):
    """n_days events on distinct days ending on last_day, each of `value`."""
    return [(user, item, value, T0 + (last_day - i) * DAY) for i, item in enumerate(range(1, n_days + 1))]


# user: (last active day, active days, value per event); monetary = days * value
USERS = {
    1: (100, 5, 5.0),   # recency 0,  frequency 5, monetary 25
    2: (90, 4, 4.0),    # recency 10, frequency 4, monetary 16
    3: (80, 3, 3.0),    # recency 20, frequency 3, monetary 9
    4: (50, 2, 2.0),    # recency 50, frequency 2, monetary 4
    5: (10, 1, 1.0),    # recency 90, frequency 1, monetary 1
    6: (10, 1, 1.0),    # the same as user 5: ties share a score
}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    ratings = [e for user, spec in USERS.items() for e in user_events(user, *spec)]
    project = make_project(tmp_path_factory.mktemp("rfm"), ratings, MOVIES)
    result = build(project)
    assert result.code == 0, result
    con = connect(project)
    yield con
    con.close()


def test_rfm_measures(warehouse):
    got = rows(warehouse, "select user_id, recency_days, frequency, monetary from features.user_rfm order by user_id")
    assert got == [(1, 0, 5, 25.0), (2, 10, 4, 16.0), (3, 20, 3, 9.0), (4, 50, 2, 4.0), (5, 90, 1, 1.0), (6, 90, 1, 1.0)]


def test_rfm_scores_and_segments(warehouse):
    # 6 users; score = 1 + floor(5 * (rank - 1) / 6), users 5 and 6 tie at rank 1:
    # ranks 1, 1, 3, 4, 5, 6 -> scores 1, 1, 2, 3, 4, 5
    got = rows(warehouse, "select user_id, r_score, f_score, m_score, rfm_segment from features.user_rfm order by user_id")
    assert got == [
        (1, 5, 5, 5, "Champions"),
        (2, 4, 4, 4, "Loyal"),
        (3, 3, 3, 3, "Need attention"),
        (4, 2, 2, 2, "Hibernating"),
        (5, 1, 1, 1, "Lost"),
        (6, 1, 1, 1, "Lost"),
    ]


def test_rfm_as_of_var(tmp_path):
    ratings = [e for user, spec in USERS.items() for e in user_events(user, *spec)]
    project = make_project(tmp_path, ratings, MOVIES)
    as_of = "2017-11-01"  # T0 + 100 days is 2017-10-22
    assert build(project, "--vars", f"{{as_of: '{as_of}'}}").code == 0
    with connect(project) as con:
        assert rows(con, "select recency_days from features.user_rfm where user_id = 1") == [(10,)]


def test_every_r_f_cell_has_a_segment():
    """The macro covers all 25 (r, f) cells with the ten segment names."""
    import duckdb
    import jinja2
    from sql_fixtures import REPO

    macro = (REPO / "sql/macros/rfm.sql").read_text()
    sql = jinja2.Template(macro + "{{ rfm_segment('r', 'f') }}").render()
    got = duckdb.sql(f"select r, f, {sql} from range(1, 6) a(r), range(1, 6) b(f)").fetchall()
    assert all(segment is not None for _, _, segment in got)
    assert {segment for _, _, segment in got} == {
        "Champions", "Loyal", "Potential loyalists", "New", "Promising", "Need attention",
        "At risk", "Cannot lose them", "Hibernating", "Lost"}


def test_temporal_split(tmp_path):
    # cutoff on day 98: user 1 (days 96..100) has 3 test events, and day 97 is its valid one;
    # user 2 (days 87..90) is all before it: train only, not evaluated
    ratings = [e for user, spec in USERS.items() for e in user_events(user, *spec)]
    project = make_project(tmp_path, ratings, MOVIES)
    cutoff = "2017-10-20"  # T0 + 98 days is 2017-10-20 02:40 UTC
    result = build(project, "--vars", f"{{split_rule: temporal, temporal_cutoff: '{cutoff}'}}")
    assert result.code == 0, result
    with connect(project) as con:
        splits = dict(rows(con, "select user_id, list(split order by position) from features.event_splits group by 1"))
        assert splits[1] == ["train", "valid", "test", "test", "test"]
        assert splits[2] == ["train"] * 4
        evaluated = rows(con, "select distinct user_id, n_test_items from eval.user_metrics")
        assert evaluated == [(1, 3)]
