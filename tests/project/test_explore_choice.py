"""eval.explore_choice: each re-ranker's setting chosen on the validation split per build."""
from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from duckrec.ml import rerank
from duckrec.ml.rerank.choice import Measures

from sql_fixtures import build, connect, generated_dataset, make_project, rows


def _row(ndcg, low, coverage, novelty=0.0, **extra):
    return {"ndcg_ratio": ndcg, "ndcg_ratio_bound": low, "ndcg_ratio_low": low, "ndcg_ratio_high": ndcg,
            "coverage_ratio": coverage,
            "novelty_gain": novelty, **extra}


def test_choice_is_the_most_covering_setting_whose_lower_bound_keeps_the_promise():
    rows_ = [_row(1.0, 1.0, 1.0), _row(0.97, 0.96, 1.3), _row(0.96, 0.94, 1.6), _row(0.99, 0.955, 1.2)]
    best, why = rerank.choose_setting(rows_, 0.05, lambda r: (r["coverage_ratio"],))
    # 1.6 x coverage has a point ratio within 5% but a bound below 0.95: not kept
    assert best == 1
    assert "3 settings of 4" in why and ">= 0.95" in why


def test_choice_reports_a_missed_coverage_target_and_when_nothing_keeps_the_promise():
    best, why = rerank.choose_setting([_row(0.97, 0.96, 1.1)], 0.05, lambda r: (r["coverage_ratio"],), 1.2)
    assert best == 0 and "below the coverage target 1.2" in why
    best, why = rerank.choose_setting([_row(0.9, 0.85, 1.5)], 0.05, lambda r: (r["coverage_ratio"],))
    assert best is None and "no setting keeps the promise" in why
    best, why = rerank.choose_setting([_row(math.nan, math.nan, 1.5)], 0.05, lambda r: (r["coverage_ratio"],))
    assert best is None and "lm has no validation hit" in why


def test_validation_interests_are_weighed_over_the_history_given_as_fit_interests_does():
    events = pl.DataFrame({"user_id": [1, 1], "item_id": [10, 20], "position": [1, 2]})
    items = pl.DataFrame({"item_id": [10, 20], "genres": [["x", "y"], ["x"]]})
    got = rerank.history_interests(events, items, window=1, mix=0.5, top_n=1).sort("interest")
    # long: x (0.5 + 1) / 2, y 0.5 / 2; short (the last event only): x 1, y 0
    assert got["weight"].to_list() == pytest.approx([0.5 * 1 + 0.5 * 0.75, 0.5 * 0 + 0.5 * 0.25])
    assert got["is_top"].to_list() == [True, False]


def test_measures_compare_hand_computed_ratios():
    # users 1, 2; valid items 10 (user 1), 20 (user 2)
    targets = pl.DataFrame({"user_id": [1, 2], "item_id": [10, 20]})
    bits = pl.DataFrame({"item_id": [10, 11, 20, 30, 31], "novelty_bits": [1.0, 1.0, 1.0, 3.0, 3.0]})
    m = Measures(np.array([1, 2]), targets, bits, k=2, replicates=50, level=0.9, seed=1)
    lm = pl.DataFrame({"user_id": [1, 1, 2, 2], "rank": [1, 2, 1, 2], "item_id": [10, 11, 20, 11]})
    # user 1's hit moves to rank 2, user 2 keeps its hit at 1; two long-tail probes replace item 11
    other = pl.DataFrame({"user_id": [1, 1, 2, 2], "rank": [1, 2, 1, 2], "item_id": [30, 10, 20, 31]})
    out = m.compare(m.of(other), m.of(lm))
    assert out["ndcg_ratio"] == pytest.approx((1 / math.log2(3) + 1) / 2)
    assert out["coverage_ratio"] == pytest.approx(4 / 3)  # {30, 10, 20, 31} vs {10, 11, 20}
    assert out["novelty_gain"] == pytest.approx((3 + 1 + 1 + 3) / 4 - 1.0)
    assert out["ndcg_ratio_low"] <= out["ndcg_ratio_bound"] <= out["ndcg_ratio"] <= out["ndcg_ratio_high"]


def test_chosen_settings_replace_the_hand_set_ones():
    settings = rerank.RerankSettings.from_vars({"explore_shares": {"New": 0.2}, "explore_default_share": 0.1})
    choice = pl.DataFrame([
        {"reranker": "lm_explore", "segment": "all", "is_chosen": True, "share_scale": 2.0, "novelty_weight": 1.0,
         "lambda_value": None},
        {"reranker": "lm_mmr", "segment": "all", "is_chosen": True, "share_scale": None, "novelty_weight": None,
         "lambda_value": 0.5},
        {"reranker": "lm_mmr", "segment": "all", "is_chosen": False, "share_scale": None, "novelty_weight": None,
         "lambda_value": 0.3},
        # no setting kept the promise: calibration serves the lm order
        {"reranker": "lm_calibrated", "segment": "all", "is_chosen": True, "share_scale": None,
         "novelty_weight": None, "lambda_value": None},
    ])
    chosen = rerank.chosen_settings(settings, choice)
    assert chosen.explore_shares == {"New": 0.4} and chosen.explore_default_share == pytest.approx(0.2)
    assert chosen.explore_novelty_weight == 1.0 and chosen.mmr_lambda == 0.5 and chosen.calibration_lambda == 0.0
    off = rerank.RerankSettings.from_vars({"choose_on_validation": False})
    assert rerank.chosen_settings(off, choice) == off


def test_uncertainty_is_read_only_where_a_probe_can_be():
    frame = pl.DataFrame({"purpose": ["holdout"] * 3, "user_id": [1, 1, 1], "rank": [1, 2, 3],
                          "item_id": [10, 20, 30], "score": [0.5, 0.3, 0.2]})
    table = rerank.Candidates.from_frame(frame)
    # the table scores only item 20, the one candidate that opens a new interest
    scored = pl.DataFrame({"purpose": ["holdout"], "user_id": [1], "item_id": [20], "mc_mean": [0.25],
                           "mc_std": [0.05]})
    mean, std = rerank.uncertainty_of(table, scored, needed=np.array([False, True, False]))
    assert mean.tolist() == [0.0, 0.25, 0.0] and std.tolist() == [0.0, 0.05, 0.0]
    with pytest.raises(ValueError, match=r"1 of 2 candidates have no mc_mean/mc_std .* item 30"):
        rerank.uncertainty_of(table, scored, needed=np.array([False, True, True]))


def test_promise_vars_are_checked():
    with pytest.raises(ValueError, match=r"unknown rerank.explore settings \['max_loss'\]"):
        rerank.RerankSettings.from_vars({"explore": {"max_loss": 0.1}})
    with pytest.raises(ValueError, match=r"rerank.mmr.max_ndcg_loss: expected a number in \[0, 1\), found 1.5"):
        rerank.RerankSettings.from_vars({"mmr": {"max_ndcg_loss": 1.5}})
    assert rerank.RerankSettings.from_vars({"explore": {"max_ndcg_loss": 0.1}}).explore.max_ndcg_loss == 0.1


def test_a_build_chooses_each_reranker_on_validation_and_serves_it(tmp_path):
    ratings, movies, tags = generated_dataset(n_users=60, n_items=80)
    project = make_project(tmp_path / "p", ratings, movies, tags)
    result = build(project)
    assert result.code == 0, result
    con = connect(project)
    chosen = rows(con, "select reranker, setting, share_scale, lambda_value, ndcg_ratio_bound, max_ndcg_loss, reason "
                       "from eval.explore_choice where is_chosen order by reranker")
    assert [r[0] for r in chosen] == ["lm_calibrated", "lm_explore", "lm_mmr"]
    for reranker, setting, _, _, low, budget, reason in chosen:
        # the choice and its reason are in the build's log too
        assert reason
        assert f"{reranker}: chose {setting} on " in result.out or f"warning: {reranker} cannot act" in result.out
        assert setting == "off" or low >= 1 - budget
    broken = rows(con, "select count(*) from eval.explore_choice where keeps_promise <> "
                       "coalesce(ndcg_ratio_bound >= 1 - max_ndcg_loss, setting = 'off')")
    assert broken == [(0,)]
    explore = dict((r[0], r) for r in chosen)["lm_explore"]
    probes = rows(con, "select count(*) from recs.lm_explore_lists where is_exploration")[0][0]
    if explore[1] == "off":
        assert probes == 0 and "warning: lm_explore cannot act" in result.out
    else:
        assert probes > 0
    # MC dropout scored only the candidates a probe can be
    assert rows(con, "select count(*) from recs.lm_candidate_uncertainty u anti join "
                     "(select * from recs.lm_candidate_interests where is_new_interest) n "
                     "using (purpose, user_id, item_id)") == [(0,)]
    scored, pool = rows(con, "select (select count(*) from recs.lm_candidate_uncertainty), "
                             "(select count(*) from recs.lm_candidates)")[0]
    assert 0 < scored < pool
    mmr_lambda = dict((r[0], r) for r in chosen)["lm_mmr"][3]
    assert f"at lambda {mmr_lambda if mmr_lambda is not None else 1.0}" in result.out


def test_clusters_of_separate_groups_are_the_groups_named_by_their_most_typical_items():
    from duckrec.ml.clusters import cluster_items, cluster_labels

    rng = np.random.default_rng(0)
    centres = np.eye(3) * 10
    vectors = np.concatenate([c + rng.normal(0, 0.5, (20, 3)) for c in centres])
    vectors[0] = centres[0]  # the most typical item of the first group
    clusters, similarity = cluster_items(vectors, 3, seed=1)
    groups = [set(clusters[i * 20:(i + 1) * 20].tolist()) for i in range(3)]
    assert all(len(g) == 1 for g in groups) and len(set().union(*groups)) == 3
    names = np.array([f"item {i}" for i in range(60)])
    labels = cluster_labels(clusters, similarity, names, typical=2)
    assert labels[int(clusters[0])].startswith("item 0 / ")
    assert cluster_items(vectors[:2], 5, seed=1)[0].max() <= 1  # k capped at the distinct rows


def test_a_catalogue_without_genres_explores_clusters_of_the_lms_item_embeddings(tmp_path):
    ratings, movies, tags = generated_dataset(n_users=60, n_items=80)
    movies = [(m, title, "(no genres listed)") for m, title, _ in movies]
    # a generous promise, so that the tiny model's noisy validation lets exploration act
    project = make_project(tmp_path / "p", ratings, movies, [],
                           vars={"interests": {"source": "auto", "clusters": 6},
                                 "rerank": {"explore": {"max_ndcg_loss": 0.9}, "tradeoff_users": 25}})
    result = build(project)
    assert result.code == 0, result
    con = connect(project)
    assert rows(con, "select distinct interest_type from features.item_interests") == [("cluster",)]
    labels = rows(con, "select count(distinct label) from ml.item_clusters")[0][0]
    assert 1 < labels <= 6
    assert rows(con, "select count(*) from features.user_interests where interest_type = 'cluster'")[0][0] > 0
    assert rows(con, "select count(*) from recs.lm_candidate_interests where is_new_interest")[0][0] > 0
    probes = rows(con, "select count(*), count(*) filter (where probed_interest in "
                       "(select label from ml.item_clusters)) from recs.lm_explore_lists where is_exploration")[0]
    assert probes[0] > 0 and probes[0] == probes[1]
    # diversity is measured on the clusters: no longer 1.0 for every strategy
    assert rows(con, "select min(diversity) < 1 from eval.metrics where k = 10") == [(True,)]
    # the trade-off curve over a seeded sample of 25 of the holdout users (rerank.tradeoff_users)
    holdout_users = rows(con, "select count(*) from features.list_users where purpose = 'holdout'")[0][0]
    assert f"tradeoff_lists: a seeded sample of 25 of {holdout_users} holdout users" in result.out, result.out
    assert rows(con, "select min(n_users), max(n_users) from eval.tradeoff") == [(25, 25)]
    assert rows(con, "select count(distinct user_id) from eval.tradeoff_lists") == [(25,)]
