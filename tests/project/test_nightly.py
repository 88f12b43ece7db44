"""Nightly builds of the whole project on a growing event log (tiny LM): new files are
loaded, the model warm-starts from its last checkpoint, nothing new reuses everything."""
from __future__ import annotations

import json

import yaml

from sql_fixtures import RATINGS_HEADER, build, connect, generated_dataset, make_project, rows, write_csv


def test_nightly_builds_warm_start_and_reuse(tmp_path):
    ratings, movies, tags = generated_dataset()
    ratings = sorted(ratings, key=lambda r: r[3])
    cut = int(len(ratings) * 0.9)
    project = make_project(tmp_path, ratings[:1], movies, tags)
    (project / "data/my_ratings.csv").unlink()
    events = project / "data/events"
    events.mkdir()
    write_csv(events / "day_0.csv", RATINGS_HEADER, ratings[:cut])
    config = yaml.safe_load((project / "project.yml").read_text())
    config["seeds"]["ratings"]["+file"] = "data/events/*.csv"
    # the hand-set exploration serves: this test follows the first build's probes into the second
    # build's events, and a per-build choice on this tiny validation split may rightly explore nothing
    config["vars"]["rerank"]["choose_on_validation"] = False
    (project / "project.yml").write_text(yaml.safe_dump(config, sort_keys=False))

    first = build(project)
    assert first.code == 0, first
    write_csv(events / "day_1.csv", RATINGS_HEADER, ratings[cut:] + [("x", 10, 4.0, ratings[-1][3])])
    second = build(project)
    assert second.code == 0, second
    assert "loaded data/events/day_1.csv" in second.out and "1 malformed (line" in second.out, second.out
    assert "warm start from lm-" in second.out
    third = build(project)
    assert third.code == 0, third

    with connect(project) as con:
        checkpoints = rows(con, "select checkpoint_id, parent_checkpoint_id, trained_on from ml.lm_checkpoints "
                                "order by trained_at")
        assert len(checkpoints) == 2
        (first_id, no_parent, first_on), (_, parent, second_on) = checkpoints
        assert no_parent is None and json.loads(first_on)["mode"] == "full"
        assert parent == first_id and json.loads(second_on)["mode"] == "warm"
        # every raw row is an event or counted as rejected, the malformed one included
        assert rows(con, "select (select count(*) from staging.events) + (select sum(n_rows) from "
                         "staging.rejected_events) = (select count(*) from raw.ratings)") == [(True,)]
        assert rows(con, "select count(*) from staging.rejected_events where user_id is null") == [(1,)]
        # a row per build x strategy x K whose measures changed: the no-op third build adds none
        per_build = rows(con, "select count(*) from eval.metrics")[0][0]
        history_runs = rows(con, "select run_id, count(*) from eval.metrics_history group by run_id order by "
                                 "min(built_at)")
        assert len(history_runs) == 2 and history_runs[0][1] == per_build, history_runs
        assert 0 < history_runs[1][1] <= per_build
        # what exploring taught: the first build's probes scored against the events of the second
        outcomes = rows(con, "select data_watermark, n_later_events, n_probed, probed_engaged_share, "
                             "not_probed_engaged_share from eval.exploration_outcomes where strategy = 'lm_explore' "
                             "order by data_watermark")
        assert len(outcomes) == 2  # logged once per watermark: the third build appended nothing
        (mark, later, probed, probed_share, other_share), (_, none_later, _, unknown, _) = outcomes
        assert later > 0 and probed > 0
        # the shares, counted again by hand from the logs and the events after the first build
        assert (probed, probed_share, other_share) == _outcome_by_hand(con, mark)
        assert none_later == 0 and unknown is None
        confirmed = rows(con, "select count(*) from features.user_interests where confirmed_at is not null")[0][0]
        # an interest a user engaged with after it was probed has its confirmed_at
        assert confirmed > 0 or probed_share == 0
        runs = rows(con, "select run_id from _duckrec.runs order by started_at")
        last = runs[-1][0]
        statuses = dict(rows(con, f"select name, status from _duckrec.node_runs where run_id = '{last}' "
                                  "and kind != 'test'"))
    # nothing new: everything reused but the history, which records the build itself
    assert {n for n, s in statuses.items() if s != "reused"} == {"metrics_history"}, statuses


def _outcome_by_hand(con, mark) -> tuple[int, float, float]:
    """(pairs probed, their engaged share, the engaged share of the other genres outside the
    user's top genres at that build) for lm_explore's build at `mark`, in Python."""
    from datetime import timedelta

    genres_of = {i: set(g) for i, g in rows(con, "select item_id, genres from staging.items")}
    every_genre = set().union(*genres_of.values())
    users = {u for (u,) in rows(con, f"select distinct user_id from recs.exploration_log where strategy = "
                                     f"'lm_explore' and data_watermark = '{mark}'")}
    probed = set(rows(con, f"select distinct user_id, probed_interest from recs.exploration_log where strategy = "
                           f"'lm_explore' and data_watermark = '{mark}'"))
    top = set(rows(con, f"select user_id, genre from recs.top_interests_log where data_watermark = '{mark}'"))
    engaged = {(u, g) for u, i, t in rows(con, "select user_id, item_id, event_time from staging.events")
               if mark < t <= mark + timedelta(days=30) for g in genres_of.get(i, ())}
    others = {(u, g) for u in users for g in every_genre if (u, g) not in top and (u, g) not in probed}
    share = (lambda pairs: round(len(pairs & engaged) / len(pairs), 12))  # noqa: E731
    return len(probed), share(probed), share(others)
