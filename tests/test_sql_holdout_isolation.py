"""The holdout lists are a function of the fit events only (eval.holdout_recommendations).

Every user's test event is replaced by an item they never had, at the same time, and their
tags on the replaced item are dropped (tests/holdout_perturbation.py): a rebuild must give
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
    assert strategies == {"popularity", "item_knn", "markov", "lm", "lm_neural", "lm_mmr", "lm_calibrated", "lm_explore"}
    differing = sorted(set(holdout) ^ set(holdout_2))
    assert not differing, f"{len(differing)} of {len(holdout)} holdout rows differ, e.g. {differing[:5]}"
    assert tradeoff == tradeoff_2
    assert served != served_2
