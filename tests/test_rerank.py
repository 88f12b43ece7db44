"""Re-rankers of duckrec.ml.rerank: MMR, calibration, exploration and their batch forms."""

from __future__ import annotations

import numpy as np
import pytest

from duckrec.ml import rerank


def _random_batch(seed: int, n_groups: int = 30, n_genres: int = 6, dim: int = 8):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(0, 25, size=n_groups)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    n = int(offsets[-1])
    return {
        "rng": rng,
        "offsets": offsets,
        "scores": rng.normal(size=n),
        "std": rng.random(n) * 0.3,
        "vectors": rng.normal(size=(n, dim)),
        "genres": (rng.random((n, n_genres)) < 0.3).astype(float),
        "targets": rng.random((n_groups, n_genres)),
        "outside": rng.random(n) < 0.4,
    }


def _lists(ranked: rerank.RankedRows, n_groups: int) -> list[np.ndarray]:
    return [ranked.rows[ranked.group == g] for g in range(n_groups)]


# --- MMR ---------------------------------------------------------------------------------


def test_mmr_picks_the_hand_computed_order():
    # rel = minmax(scores) = [1, 0.9, 0.5, 0]; cos(a,b) = 1, cos(a,c) = 0,
    # cos(a,d) = 0.6, cos(c,d) = 0.8, cos(b,c) = 0. With lam = 0.5:
    #   pick 1: 0.5*rel -> a (0.50 beats b 0.45)
    #   pick 2: b 0.45-0.5*1 = -0.05, c 0.25-0.5*0 = 0.25, d 0-0.5*0.6 = -0.30 -> c
    #   pick 3: b 0.45-0.5*max(1,0) = -0.05, d 0-0.5*max(0.6,0.8) = -0.40 -> b
    #   pick 4: d
    scores = np.array([1.0, 0.9, 0.5, 0.0])
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    assert rerank.mmr(scores, vectors, k=4, lam=0.5).tolist() == [0, 2, 1, 3]
    assert rerank.mmr(scores, vectors, k=2, lam=0.5).tolist() == [0, 2]


def test_mmr_lambda_one_is_the_score_order_exactly_with_stable_ties():
    scores = np.array([0.3, 0.9, 0.3, 0.9, 0.1])
    vectors = np.eye(5)
    assert rerank.mmr(scores, vectors, k=5, lam=1.0).tolist() == [1, 3, 0, 2, 4]


def test_mmr_batch_lambda_one_is_the_score_order_of_every_group():
    data = _random_batch(1)
    ranked = rerank.mmr_batch(data["offsets"], data["scores"], data["vectors"], k=10, lam=1.0)
    for g, rows in enumerate(_lists(ranked, len(data["offsets"]) - 1)):
        start, stop = data["offsets"][g], data["offsets"][g + 1]
        expected = np.argsort(-data["scores"][start:stop], kind="stable")[:10] + start
        assert rows.tolist() == expected.tolist()


def test_mmr_batch_matches_one_user_at_a_time():
    data = _random_batch(2)
    offsets = data["offsets"]
    ranked = rerank.mmr_batch(offsets, data["scores"], data["vectors"], k=7, lam=0.6)
    for g, rows in enumerate(_lists(ranked, len(offsets) - 1)):
        start, stop = offsets[g], offsets[g + 1]
        alone = rerank.mmr(data["scores"][start:stop], data["vectors"][start:stop], k=7, lam=0.6)
        assert rows.tolist() == (alone + start).tolist()
        assert ranked.rank[ranked.group == g].tolist() == list(range(1, len(alone) + 1))


def test_mmr_lower_lambda_lowers_redundancy():
    data = _random_batch(3, n_groups=40, dim=4)
    unit = data["vectors"] / np.linalg.norm(data["vectors"], axis=1, keepdims=True)

    def mean_similarity(lam: float) -> float:
        ranked = rerank.mmr_batch(data["offsets"], data["scores"], data["vectors"], k=5, lam=lam)
        values = []
        for rows in _lists(ranked, 40):
            if rows.size > 1:
                sim = unit[rows] @ unit[rows].T
                values.append(sim[np.triu_indices(rows.size, 1)].mean())
        return float(np.mean(values))

    assert mean_similarity(0.2) < mean_similarity(1.0)


# --- calibration ---------------------------------------------------------------------------


def _two_genre_toy():
    # ten genre-A candidates score above ten genre-B candidates
    scores = np.r_[np.linspace(1.0, 0.55, 10), np.linspace(0.5, 0.05, 10)]
    genres = np.r_[np.tile([[1.0, 0.0]], (10, 1)), np.tile([[0.0, 1.0]], (10, 1))]
    return scores, genres


def test_calibration_reaches_the_target_mix_on_a_two_genre_toy():
    scores, genres = _two_genre_toy()
    order = rerank.calibrate(scores, genres, np.array([0.7, 0.3]), k=10, lam=0.99)
    assert genres[order].sum(axis=0).tolist() == [7.0, 3.0]
    # within each genre the score order is kept
    a_picks = [i for i in order if i < 10]
    b_picks = [i for i in order if i >= 10]
    assert a_picks == sorted(a_picks) and b_picks == sorted(b_picks)


def test_calibration_lambda_zero_is_the_score_order():
    scores, genres = _two_genre_toy()
    order = rerank.calibrate(scores, genres, np.array([0.7, 0.3]), k=10, lam=0.0)
    assert order.tolist() == list(range(10))


def test_calibration_moves_the_mix_towards_the_target_as_lambda_grows():
    scores, genres = _two_genre_toy()
    b_share = [
        genres[rerank.calibrate(scores, genres, np.array([0.5, 0.5]), k=10, lam=lam)][:, 1].mean()
        for lam in (0.0, 0.5, 0.99)
    ]
    assert b_share[0] <= b_share[1] <= b_share[2] == 0.5


def test_calibration_without_a_target_keeps_the_score_order():
    scores, genres = _two_genre_toy()
    order = rerank.calibrate(scores, genres, np.zeros(2), k=5, lam=0.9)
    assert order.tolist() == [0, 1, 2, 3, 4]


def test_calibrate_batch_matches_one_user_at_a_time():
    data = _random_batch(4)
    offsets = data["offsets"]
    ranked = rerank.calibrate_batch(offsets, data["scores"], data["genres"], data["targets"], k=8, lam=0.5)
    for g, rows in enumerate(_lists(ranked, len(offsets) - 1)):
        start, stop = offsets[g], offsets[g + 1]
        alone = rerank.calibrate(
            data["scores"][start:stop], data["genres"][start:stop], data["targets"][g], k=8, lam=0.5
        )
        assert rows.tolist() == (alone + start).tolist()


def test_calibrate_rejects_mismatched_genre_columns():
    scores, genres = _two_genre_toy()
    with pytest.raises(ValueError, match="3 genres but item_genres has 2"):
        rerank.calibrate(scores, genres, np.array([0.5, 0.3, 0.2]), k=5, lam=0.5)


# --- exploration -----------------------------------------------------------------------------


def test_exploration_slots_follow_the_segment_shares():
    shares = {"Champions": 0.1, "New": 0.3, "At risk": 0.0}
    assert rerank.exploration_slots("Champions", shares, 10) == 1
    assert rerank.exploration_slots("New", shares, 10) == 3
    assert rerank.exploration_slots("At risk", shares, 10) == 0
    assert rerank.exploration_slots("Unknown", shares, 10, default_share=0.2) == 2
    assert rerank.exploration_slots(None, shares, 10, default_share=0.2) == 2
    # halves round up, not to even
    assert rerank.exploration_slots("x", {"x": 0.25}, 10) == 3
    assert rerank.exploration_slots("x", {"x": 1.0}, 10) == 10
    with pytest.raises(ValueError, match=r"must be in \[0, 1\], found 1.5"):
        rerank.exploration_slots("x", {"x": 1.5}, 10)


def test_explore_keeps_the_exploit_order_and_probes_outside_the_top_interests():
    mean = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    std = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.05, 0.3, 0.2])
    outside = np.array([False, True, False, False, False, True, True, True])
    order, flags = rerank.explore(mean, std, outside, k=5, n_slots=2, rule="ucb", beta=1.0, placement="tail")
    # exploit slots: the top 3 by mean (candidate 1 is outside but earns its slot by score);
    # probes by UCB among the rest outside: 6 (0.6), 5 (0.45), 7 (0.4)
    assert order.tolist() == [0, 1, 2, 6, 5]
    assert flags.tolist() == [False, False, False, True, True]
    assert outside[order[flags]].all()
    # spread: blocks [0..2] and [3..4] (ceil(5/2)=3), a probe closes each block
    order, flags = rerank.explore(mean, std, outside, k=5, n_slots=2, rule="ucb", beta=1.0)
    assert order.tolist() == [0, 1, 6, 2, 5]
    assert flags.tolist() == [False, False, True, False, True]


def test_ucb_beta_trades_mean_for_spread():
    mean = np.array([0.9, 0.5, 0.4])
    std = np.array([0.0, 0.0, 0.2])
    outside = np.array([False, True, True])
    assert rerank.explore(mean, std, outside, k=2, n_slots=1, beta=0.0)[0].tolist() == [0, 1]
    assert rerank.explore(mean, std, outside, k=2, n_slots=1, beta=1.0)[0].tolist() == [0, 2]


def test_explore_with_no_slots_is_the_exploit_order():
    mean = np.array([0.1, 0.5, 0.5, 0.2])
    order, flags = rerank.explore(mean, np.ones(4), np.ones(4, bool), k=3, n_slots=0)
    assert order.tolist() == [1, 2, 3] and not flags.any()


def test_explore_exploit_scores_override_the_mean_for_exploit_slots():
    mean = np.array([0.1, 0.9, 0.5])
    plain = np.array([0.9, 0.1, 0.5])
    order, _ = rerank.explore(mean, np.zeros(3), np.zeros(3, bool), k=3, n_slots=1, exploit_scores=plain)
    assert order.tolist() == [0, 2, 1]


def test_spread_slots_give_every_prefix_its_share_and_never_take_the_top():
    assert rerank.exploration_positions(20, 4).tolist() == [4, 9, 14, 19]
    assert rerank.exploration_positions(10, 3).tolist() == [3, 6, 9]
    assert rerank.exploration_positions(10, 1).tolist() == [9]
    assert rerank.exploration_positions(10, 0).tolist() == []
    assert rerank.exploration_positions(3, 3).tolist() == [0, 1, 2]
    assert rerank.exploration_positions(10, 2, "tail").tolist() == [8, 9]
    mean = np.linspace(1.0, 0.0, 30)
    outside = np.arange(30) >= 12
    order, flags = rerank.explore(mean, np.zeros(30), outside, k=20, n_slots=4)
    assert flags[:5].sum() == 1 and flags[:10].sum() == 2 and flags.sum() == 4
    assert not flags[0]
    assert outside[order[flags]].all()
    # the exploit slots keep the score order
    assert order[~flags].tolist() == list(range(16))
    with pytest.raises(ValueError, match="placement must be 'spread' or 'tail', found 'middle'"):
        rerank.exploration_positions(10, 2, "middle")


def test_explore_falls_back_to_exploit_when_too_few_candidates_are_outside():
    mean = np.linspace(1.0, 0.0, 10)
    outside = np.zeros(10, bool)
    outside[9] = True
    order, flags = rerank.explore(mean, np.zeros(10), outside, k=5, n_slots=3)
    assert order.tolist() == [0, 1, 2, 3, 9]
    assert flags.tolist() == [False, False, False, False, True]


def test_explore_edge_cases_short_and_empty_candidate_lists():
    order, flags = rerank.explore(np.array([0.2, 0.7]), np.zeros(2), np.array([True, False]), k=10, n_slots=4)
    assert sorted(order.tolist()) == [0, 1] and flags.tolist() == [False, True]
    order, flags = rerank.explore(np.zeros(0), np.zeros(0), np.zeros(0, bool), k=10, n_slots=2)
    assert order.size == 0 and flags.size == 0
    assert rerank.mmr(np.zeros(0), np.zeros((0, 3)), k=5, lam=0.5).size == 0
    assert rerank.calibrate(np.zeros(0), np.zeros((0, 2)), np.ones(2), k=5, lam=0.5).size == 0
    assert rerank.mmr(np.array([0.1, 0.3]), np.eye(2), k=10, lam=0.5).tolist() == [1, 0]
    assert rerank.mmr(np.array([0.1, 0.3]), np.eye(2), k=0, lam=0.5).size == 0


def test_explore_rejects_bad_arguments():
    with pytest.raises(ValueError, match="rule must be 'ucb' or 'thompson', found 'greedy'"):
        rerank.explore(np.ones(2), np.ones(2), np.ones(2, bool), k=2, n_slots=1, rule="greedy")
    with pytest.raises(ValueError, match="needs a seeded numpy Generator"):
        rerank.explore(np.ones(2), np.ones(2), np.ones(2, bool), k=2, n_slots=1, rule="thompson")
    with pytest.raises(ValueError, match="expected 2 values"):
        rerank.explore(np.ones(2), np.ones(3), np.ones(2, bool), k=2, n_slots=1)


@pytest.mark.parametrize("rule", ["ucb", "thompson"])
def test_explore_batch_slots_are_outside_follow_the_shares_and_never_duplicate(rule):
    data = _random_batch(5, n_groups=60)
    offsets = data["offsets"]
    n_groups = len(offsets) - 1
    segments = np.array(["Champions", "New", "Other"])[np.arange(n_groups) % 3]
    shares = {"Champions": 0.1, "New": 0.4}
    slots = np.array([rerank.exploration_slots(s, shares, 10, default_share=0.2) for s in segments])
    ranked = rerank.explore_batch(
        offsets, data["scores"], data["std"], data["outside"], k=10, n_slots=slots,
        rule=rule, beta=1.0, seed=7, group_keys=np.arange(n_groups) * 3 + 11,
    )
    for g in range(n_groups):
        in_group = ranked.group == g
        rows, flags = ranked.rows[in_group], ranked.is_exploration[in_group]
        size = offsets[g + 1] - offsets[g]
        assert rows.size == min(10, size)
        assert len(set(rows.tolist())) == rows.size
        assert ((rows >= offsets[g]) & (rows < offsets[g + 1])).all()
        assert data["outside"][rows[flags]].all()
        eligible = data["outside"][offsets[g]:offsets[g + 1]].sum()
        assert flags.sum() <= slots[g]
        if size >= 10 + slots[g] and eligible >= 10:
            assert flags.sum() == slots[g]
        assert ranked.rank[in_group].tolist() == list(range(1, rows.size + 1))


def test_same_seed_gives_the_same_lists_and_another_seed_other_draws():
    data = _random_batch(6, n_groups=50)
    args = (data["offsets"], data["scores"], data["std"] + 0.5, data["outside"])
    keys = np.arange(50)
    first = rerank.explore_batch(*args, k=10, n_slots=4, rule="thompson", seed=3, group_keys=keys)
    again = rerank.explore_batch(*args, k=10, n_slots=4, rule="thompson", seed=3, group_keys=keys)
    other = rerank.explore_batch(*args, k=10, n_slots=4, rule="thompson", seed=4, group_keys=keys)
    assert first.rows.tolist() == again.rows.tolist()
    assert first.is_exploration.tolist() == again.is_exploration.tolist()
    assert first.rows.tolist() != other.rows.tolist()


def test_a_users_draws_do_not_depend_on_the_other_users_in_the_batch():
    data = _random_batch(7, n_groups=20)
    offsets = data["offsets"]
    args = (data["scores"], data["std"] + 0.5, data["outside"])
    whole = rerank.explore_batch(offsets, *args, k=10, n_slots=3, rule="thompson", seed=1, group_keys=np.arange(20))
    g = int(np.argmax(np.diff(offsets)))
    start, stop = offsets[g], offsets[g + 1]
    alone = rerank.explore_batch(
        np.array([0, stop - start]), *(a[start:stop] for a in args),
        k=10, n_slots=3, rule="thompson", seed=1, group_keys=np.array([g]),
    )
    assert whole.rows[whole.group == g].tolist() == (alone.rows + start).tolist()


def test_no_strategy_returns_a_duplicate():
    data = _random_batch(8, n_groups=40)
    offsets = data["offsets"]
    for ranked in (
        rerank.mmr_batch(offsets, data["scores"], data["vectors"], k=12, lam=0.3),
        rerank.calibrate_batch(offsets, data["scores"], data["genres"], data["targets"], k=12, lam=0.7),
        rerank.explore_batch(offsets, data["scores"], data["std"], data["outside"], k=12, n_slots=5),
    ):
        for rows in _lists(ranked, 40):
            assert len(set(rows.tolist())) == rows.size


# --- helpers -----------------------------------------------------------------------------


def test_group_offsets_marks_runs_of_equal_keys():
    purpose = np.array(["h", "h", "h", "s", "s"])
    user = np.array([1, 1, 2, 1, 1])
    assert rerank.group_offsets(purpose, user).tolist() == [0, 2, 3, 5]
    assert rerank.group_offsets(np.array([], dtype=np.int64)).tolist() == [0]


def test_offsets_that_do_not_cover_the_rows_are_rejected():
    with pytest.raises(ValueError, match="from 0 to 3"):
        rerank.mmr_batch(np.array([0, 2]), np.ones(3), np.ones((3, 2)), k=2, lam=0.5)


def test_exploration_reason_names_the_interest_mean_and_spread():
    assert rerank.exploration_reason("Documentary", 0.1234, 0.05) == "explore Documentary (mean 0.12, spread 0.05)"
    assert rerank.exploration_reason("Film-Noir", 0.00123, 0.0004) == "explore Film-Noir (mean 0.0012, spread 0.0004)"


def test_most_similar_rows_finds_the_closest_history_item_per_group():
    cand = np.array([[1.0, 0.1], [0.0, 1.0], [1.0, 0.0]])
    hist = np.array([[0.0, 2.0], [3.0, 0.0], [0.0, 1.0]])
    # group 0: candidates 0,1 vs history rows 0,1; group 1: candidate 2 vs history row 2
    out = rerank.most_similar_rows(np.array([0, 2, 3]), cand, np.array([0, 2, 3]), hist)
    assert out.tolist() == [1, 0, 2]
    out = rerank.most_similar_rows(np.array([0, 2, 3]), cand, np.array([0, 2, 2]), hist[:2])
    assert out.tolist() == [1, 0, -1]


def test_whole_batch_of_a_movielens_sized_run_is_fast():
    import time

    rng = np.random.default_rng(0)
    groups, width = 1340, 100
    offsets = np.arange(groups + 1) * width
    scores = rng.normal(size=groups * width)
    started = time.perf_counter()
    rerank.mmr_batch(offsets, scores, rng.normal(size=(groups * width, 32)), k=20, lam=0.7)
    rerank.calibrate_batch(offsets, scores, (rng.random((groups * width, 20)) < 0.2) * 1.0,
                           rng.random((groups, 20)), k=20, lam=0.5)
    rerank.explore_batch(offsets, scores, rng.random(groups * width), rng.random(groups * width) < 0.5,
                         k=20, n_slots=3, rule="thompson", seed=1)
    assert time.perf_counter() - started < 10.0
