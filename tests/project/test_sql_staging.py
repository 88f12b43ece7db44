"""Staging on untidy inputs, a generated dataset of MovieLens' shape, a sample of the real
seeds, and the error cases: each gives a counted rejection or a clear message, never a crash."""
from __future__ import annotations

import csv

import pytest

from sql_fixtures import REPO, T0, build, connect, generated_dataset, make_project, rows

TRACEBACK = "Traceback (most recent call last)"
MOVIES = [(1, "Alpha (1995)", "Comedy|Drama"), (2, " Beta, The (2001) ", "(no genres listed)"),
          (3, "Babylon 5 (1994-1998)", "Sci-Fi"), (4, "No Year", "Drama|Drama")]
HEADER = "userId,movieId,rating,timestamp\r\n"


STRATEGIES = ("popularity", "item_knn", "markov", "new_in_genre", "lm", "lm_neural", "lm_mmr", "lm_calibrated", "lm_explore",
              "text_knn")

def test_generated_dataset_builds_and_passes_every_data_test(tmp_path):
    ratings, movies, tags = generated_dataset()
    project = make_project(tmp_path, ratings, movies, tags)
    result = build(project)
    assert result.code == 0, result
    assert " FAIL " not in result.out and " ERROR " not in result.out
    with connect(project) as con:
        assert rows(con, "select reason, sum(n_rows)::int from staging.rejected_events group by 1") == [("unknown_item", 1)]
        n_users = rows(con, "select count(distinct user_id) from staging.events")[0][0]
        assert n_users == 60
        # users 17, 34, 51 have 2 events: train only, so no holdout list
        assert rows(con, "select count(*) from features.list_users where purpose = 'holdout'") == [(57,)]
        strategies = rows(con, "select strategy, count(distinct user_id) from recs.recommendations group by 1 order by 1")
        assert strategies == [(s, 60) for s in sorted(STRATEGIES)]
        assert rows(con, "select distinct k from eval.metrics order by k") == [(5,), (10,), (20,)]
        tags_ = rows(con, "select item_id, tag, n_users from staging.item_tags order by 1, 2")
        assert tags_ == [(10, "dark comedy", 2), (20, "classic", 1)]


def test_items_parse_titles_years_and_genres(tmp_path):
    project = make_project(tmp_path, [(1, 1, 4.0, T0)], MOVIES)
    assert build(project).code == 0
    with connect(project) as con:
        got = rows(con, "select item_id, title, release_year, genres from staging.items order by item_id")
    assert got == [
        (1, "Alpha", 1995, ["Comedy", "Drama"]),
        (2, "Beta, The", 2001, []),
        (3, "Babylon 5", 1994, ["Sci-Fi"]),
        (4, "No Year", None, ["Drama"]),
    ]


def test_bad_events_are_counted_rejections(tmp_path):
    ratings = [
        (1, 1, 4.0, T0), (1, 2, 3.0, T0 + 60), (1, 3, 5.0, T0 + 120),
        (1, 3, 5.0, T0 + 120),             # exact duplicate
        (1, 4, 7.0, T0 + 180),             # rating above value_max
        (1, 4, 0.0, T0 + 240),             # rating below value_min
        (2, 99, 4.0, T0),                  # item missing from movies
        (2, 98, 4.0, T0 + 1),              # another one
        (2, 1, 2.0, T0 + 2),
    ]
    project = make_project(tmp_path, ratings, MOVIES)
    result = build(project)
    assert result.code == 0, result
    with connect(project) as con:
        reasons = dict(rows(con, "select reason, sum(n_rows)::int from staging.rejected_events group by 1"))
        assert reasons == {"duplicate": 1, "value_out_of_range": 2, "unknown_item": 2}
        assert rows(con, "select count(*) from staging.events") == [(4,)]
        # nothing disappears: kept + rejected = raw
        assert rows(con, """select (select count(*) from staging.events)
                                   + (select sum(n_rows) from staging.rejected_events)
                                   = (select count(*) from raw.ratings)""") == [(True,)]


def test_value_range_comes_from_vars(tmp_path):
    ratings = [(1, 1, 4.0, T0), (1, 2, 8.0, T0 + 1), (1, 3, 10.0, T0 + 2)]
    project = make_project(tmp_path, ratings, MOVIES, vars={"value_min": 1, "value_max": 10})
    assert build(project).code == 0
    with connect(project) as con:
        assert rows(con, "select count(*) from staging.events") == [(3,)]


@pytest.mark.parametrize("text, expected", [
    (HEADER, "staging.events: no usable events: raw.ratings has 0 rows"),
    (HEADER + "1,99,4.0,1500000000\r\n", "raw.ratings has 1 rows, all rejected (see staging.rejected_events)"),
    ("", "the file is empty"),
])
def test_empty_ratings_give_a_clear_message(tmp_path, text, expected):
    project = make_project(tmp_path, text, MOVIES)
    result = build(project)
    assert result.code != 0
    assert expected in result.out
    assert TRACEBACK not in result.out


def test_malformed_ratings_row_gives_a_clear_message(tmp_path):
    text = HEADER + "1,1,4.0,1500000000\r\n1,abc,4.0,1500000001\r\n"
    result = build(make_project(tmp_path, text, MOVIES))
    assert result.code != 0
    assert "my_ratings.csv" in result.out and "abc" in result.out
    assert TRACEBACK not in result.out


def test_a_sample_of_the_real_seeds(tmp_path):
    """The first 40 users of the MovieLens seeds, the real movies and tags files. Text is off:
    encoding the 9,125 titles costs a minute and is not this test's subject (tests/project/test_text.py)."""
    with open(REPO / "seeds/ratings.csv", newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)  # noqa: F841
        sample = [row for row in reader if int(row[0]) <= 40]
    project = make_project(tmp_path, [tuple(r) for r in sample], [], vars={"text": {"enabled": False}})
    for seed in ("movies", "tags", "links"):
        text = (project / "project.yml").read_text().replace(f"data/my_{seed}.csv", str(REPO / f"seeds/{seed}.csv"))
        (project / "project.yml").write_text(text)
    result = build(project)
    assert result.code == 0, result
    assert " FAIL " not in result.out
    with connect(project) as con:
        assert rows(con, "select count(distinct user_id) from staging.events") == [(40,)]
        # movies.csv is the whole catalogue: every rated movie is in it, no rating is rejected
        assert rows(con, "select count(*) from staging.items") == [(9125,)]
        assert rows(con, "select count(*) from staging.rejected_events") == [(0,)]
        assert rows(con, "select count(*) from staging.events") == [(len(sample),)]
        assert rows(con, "select count(*) from eval.metrics") == [((len(STRATEGIES) - 1) * 3,)]  # text_knn is off
        reasons = rows(con, "select distinct split_part(reason, ' ', 1) from recs.recommendations order by 1")
        assert reasons == [("after",), ("explore",), ("like",), ("new",), ("popular",)]


def test_a_rejected_share_above_the_threshold_warns_and_the_build_succeeds(tmp_path):
    ratings, movies, tags = generated_dataset(n_users=20, n_items=30)
    # 2 of the rows name an item the catalogue lacks
    ratings = ratings + [(2, 99_998, 3.0, T0)]
    n_rows = len(ratings)
    project = make_project(tmp_path, ratings, movies, tags, vars={"max_rejected_share": 1.5 / n_rows})
    result = build(project)
    assert result.code == 0, result
    warned = [line for line in result.out.splitlines() if "rejected_events_share" in line]
    assert warned and "WARN" in warned[0], result
    # the build summary says how many rows were rejected and why
    assert f"staging.rejected_events: 2 of {n_rows:,} ratings" in result.out and "unknown_item 2" in result.out, result
    project = make_project(tmp_path, ratings, movies, tags, vars={"max_rejected_share": 2.5 / n_rows})
    result = build(project)
    passed = [line for line in result.out.splitlines() if "rejected_events_share" in line]
    assert result.code == 0 and passed and "WARN" not in passed[0], result
