"""The holdout lists are a function of the fit events only (eval.holdout_recommendations).

Every user's test event is replaced by an item they never had, at the same time, and their
tags on the replaced item are dropped (tests/project/holdout_perturbation.py): a rebuild must give
the same holdout rows, every strategy, rank, item and score, the language model's included,
under both split rules. The served lists, which may see every event, do change: the
perturbation is real.
"""
from __future__ import annotations

import random

import pytest

from holdout_perturbation import perturb
from sql_fixtures import build, connect, generated_dataset, make_project, rows

HOLDOUT = "select strategy, user_id, rank, item_id, score from eval.holdout_recommendations order by all"
TRADEOFF = "select strategy, setting, user_id, rank, item_id from eval.tradeoff_lists order by all"
SERVED = "select strategy, user_id, rank, item_id from recs.recommendations order by all"


def tagged_dataset():
    """generated_dataset plus tags: every user tags their last few items (their test item
    among them) with words other users use too, so the tags become content tokens and tag
    interests."""
    ratings, movies, tags = generated_dataset(n_users=40, n_items=60, seed=11)
    rng = random.Random(3)
    words = ["funny", "dark", "classic", "slow", "twist", "cult"]
    by_user = {}
    for user, item, _, t in ratings:
        by_user.setdefault(user, []).append((t, item))
    for user, events in by_user.items():
        for t, item in sorted(events)[-3:]:
            tags.append((user, item, rng.choice(words), t + 30))
    return ratings, movies, tags


def holdout_tables(tmp_path, ratings, movies, tags, split_rule):
    project = make_project(tmp_path, ratings, movies, tags, vars={"split_rule": split_rule, "k": 5})
    result = build(project)
    assert result.code == 0, result
    con = connect(project)
    try:
        return rows(con, HOLDOUT), rows(con, TRADEOFF), rows(con, SERVED)
    finally:
        con.close()


@pytest.mark.parametrize("split_rule", ["leave_last_out", "temporal"])
def test_replacing_the_test_events_changes_no_holdout_row(tmp_path, split_rule):
    ratings, movies, tags = tagged_dataset()
    changed_ratings, changed_tags, n_replaced = perturb(ratings, tags, movies, split_rule)
    assert n_replaced >= 20 and len(changed_tags) < len(tags)

    holdout, tradeoff, served = holdout_tables(tmp_path / "original", ratings, movies, tags, split_rule)
    holdout_2, tradeoff_2, served_2 = holdout_tables(tmp_path / "perturbed", changed_ratings, movies, changed_tags,
                                                     split_rule)

    strategies = {r[0] for r in holdout}
    assert strategies == {"popularity", "item_knn", "markov", "new_in_genre", "lm", "lm_neural", "lm_mmr", "lm_calibrated",
                          "lm_explore", "text_knn"}
    differing = sorted(set(holdout) ^ set(holdout_2))
    assert not differing, f"{len(differing)} of {len(holdout)} holdout rows differ, e.g. {differing[:5]}"
    assert tradeoff == tradeoff_2
    assert served != served_2


def _split_change(tmp_path, ratings, movies, tags):
    """Build under leave_last_out, then switch to temporal and build again (a nightly build
    after an edit of project.yml); the second build's output and holdout rows."""
    project = make_project(tmp_path, ratings, movies, tags, vars={"split_rule": "leave_last_out", "k": 5})
    assert build(project).code == 0
    make_project(tmp_path, ratings, movies, tags, vars={"split_rule": "temporal", "k": 5})
    second = build(project)
    assert second.code == 0, second
    con = connect(project)
    try:
        return second.out, rows(con, HOLDOUT)
    finally:
        con.close()


def test_a_split_change_retrains_and_the_holdout_lists_never_see_its_test_events(tmp_path):
    """Weights trained under leave_last_out learned events that temporal makes test events:
    a warm start from them would leak the test period into the holdout lists."""
    ratings, movies, tags = tagged_dataset()
    changed_ratings, changed_tags, n_replaced = perturb(ratings, tags, movies, "temporal")
    assert n_replaced >= 20
    out, holdout = _split_change(tmp_path / "original", ratings, movies, tags)
    assert "full training (the split changed (leave_last_out -> temporal))" in out, out
    assert "warm start" not in out
    _, holdout_2 = _split_change(tmp_path / "perturbed", changed_ratings, movies, changed_tags)
    differing = sorted(set(holdout) ^ set(holdout_2))
    assert not differing, f"{len(differing)} of {len(holdout)} holdout rows differ, e.g. {differing[:5]}"


def test_a_corrected_rating_that_keeps_the_count_retrains_the_model(tmp_path):
    ratings, movies, tags = generated_dataset(n_users=30, n_items=40, seed=5)
    project = make_project(tmp_path, ratings, movies, tags, vars={"k": 5})
    assert build(project).code == 0
    first_user = [r for r in ratings if r[0] == 1 and r[1] != 99_999]
    early = min(first_user, key=lambda r: r[3])  # a train event, far from the user's last two
    corrected = [(u, i, 1.0 if v != 1.0 else 2.0, t) if (u, i, v, t) == early else (u, i, v, t)
                 for u, i, v, t in ratings]
    make_project(tmp_path, corrected, movies, tags, vars={"k": 5})
    again = build(project)
    assert again.code == 0, again
    assert "full training (the events it learned from changed: 1 of" in again.out, again.out
    assert "no new event since checkpoint" not in again.out
