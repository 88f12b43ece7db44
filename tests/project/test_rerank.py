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


def _steck_greedy(scores, genres, target, k, lam, alpha=0.01):
    """Steck's calibrated re-ranking written out plainly: at each step the candidate that
    maximises (1 - lam) * rel - lam * KL(p || (1 - alpha) q + alpha p)."""
    p = target / target.sum()
    rel = (scores - scores.min()) / (scores.max() - scores.min())
    item = genres / np.maximum(genres.sum(1, keepdims=True), 1e-300)
    chosen: list[int] = []
    for _ in range(k):
        best, best_value = None, -np.inf
        for i in range(len(scores)):
            if i in chosen:
                continue
            mix = item[chosen + [i]].sum(0)
            q = mix / mix.sum() if mix.sum() > 0 else np.zeros_like(mix)
            q_s = (1 - alpha) * q + alpha * p
            kl = sum(pg * np.log(pg / qg) for pg, qg in zip(p, q_s) if pg > 0)
            value = (1 - lam) * rel[i] - lam * kl
            if value > best_value:
                best, best_value = i, value
        chosen.append(best)
    return chosen


@pytest.mark.parametrize("lam", [0.3, 0.9])
def test_calibration_is_stecks_greedy_objective(lam):
    rng = np.random.default_rng(3)
    for _ in range(5):
        scores = rng.random(25)
        genres = (rng.random((25, 6)) < 0.35).astype(float)
        genres[:2] = 0.0  # items without genres
        target = rng.random(6) * (rng.random(6) < 0.6) + np.r_[1.0, np.zeros(5)]
        assert rerank.calibrate(scores, genres, target, k=8, lam=lam).tolist() == _steck_greedy(
            scores, genres, target, 8, lam)


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


def test_distinct_interests_spread_the_probes_over_interests_first():
    mean = np.array([0.9, 0.5, 0.45, 0.4, 0.3])
    outside = np.array([False, True, True, True, True])
    interests = np.array([0, 7, 7, 8, 7])
    # by UCB alone the probes would be 1, 2 (both interest 7); one per interest first: 1, 3
    order, flags = rerank.explore(mean, np.zeros(5), outside, k=3, n_slots=2, placement="tail")
    assert order[flags].tolist() == [1, 2]
    order, flags = rerank.explore(mean, np.zeros(5), outside, k=3, n_slots=2, placement="tail", interests=interests)
    assert order[flags].tolist() == [1, 3]
    # more slots than interests: the rest go by value
    order, flags = rerank.explore(mean, np.zeros(5), outside, k=4, n_slots=3, placement="tail", interests=interests)
    assert order[flags].tolist() == [1, 3, 2]


def test_repeat_penalty_spreads_probes_over_items_across_users():
    # three users with the same candidates: 0 is exploit, 1-3 are outside, 1 the best probe
    mean = np.tile([0.9, 0.5, 0.4, 0.3], 3)
    outside = np.tile([False, True, True, True], 3)
    items = np.tile([100, 101, 102, 103], 3)
    offsets = np.array([0, 4, 8, 12])
    plain = rerank.explore_batch(offsets, mean, np.zeros(12), outside, k=2, n_slots=1)
    assert items[plain.rows[plain.is_exploration]].tolist() == [101, 101, 101]
    # places in the probe order are 0, 1, 2 for items 101, 102, 103, plus penalty x times probed
    # penalty 1: user 2 sees 101 at 0+1 tie 102 at 1 (ties keep the value order) -> 101;
    #            user 3 sees 101 at 0+2, 102 at 1 -> 102
    spread = rerank.explore_batch(offsets, mean, np.zeros(12), outside, k=2, n_slots=1,
                                  item_keys=items, repeat_penalty=1.0)
    assert items[spread.rows[spread.is_exploration]].tolist() == [101, 101, 102]
    # penalty 3: user 2 sees 101 at 3, 102 at 1 -> 102; user 3 sees 101 at 3, 102 at 4, 103 at 2 -> 103
    strong = rerank.explore_batch(offsets, mean, np.zeros(12), outside, k=2, n_slots=1,
                                  item_keys=items, repeat_penalty=3.0)
    assert items[strong.rows[strong.is_exploration]].tolist() == [101, 102, 103]
    with pytest.raises(ValueError, match="repeat_penalty needs item_keys"):
        rerank.explore_batch(offsets, mean, np.zeros(12), outside, k=2, n_slots=1, repeat_penalty=1.0)


def test_repeat_shown_steers_probes_away_from_items_other_lists_show():
    # user 1: 200 is its exploit item, 101 (0.5) and 102 (0.4) new interests, 101 the better probe
    # user 2: 101 is its exploit item, 103 (0.5) and 104 (0.4) new interests
    mean = np.array([0.9, 0.5, 0.4, 0.9, 0.5, 0.4])
    outside = np.array([False, True, True, False, True, True])
    items = np.array([200, 101, 102, 101, 103, 104])
    offsets = np.array([0, 3, 6])

    def probes(**options):
        ranked = rerank.explore_batch(offsets, mean, np.zeros(6), outside, k=2, n_slots=1, item_keys=items, **options)
        return items[ranked.rows[ranked.is_exploration]].tolist()

    # counting probes only, 101 was probed by nobody before user 1: user 1 probes it, though
    # user 2 is shown it anyway
    assert probes(repeat_penalty=2.0) == [101, 103]
    # counting what the exploit slots show: 101 sits at place 0 + 2 x 1 (user 2 shows it),
    # 102 at place 1 -> user 1 probes 102, an item no list showed
    assert probes(repeat_penalty=2.0, repeat_shown=True) == [102, 103]
    # a penalty of 0.5 keeps 101 ahead (0.5 < 1)
    assert probes(repeat_penalty=0.5, repeat_shown=True) == [101, 103]
    assert rerank.RerankSettings.from_vars({"explore_repeat_shown": True}).explore_options()["repeat_shown"] is True


def test_novelty_weight_probes_the_long_tail():
    # 0 is the exploit item; among the probes 1 has the best bound but everyone knows it
    mean = np.array([0.9, 0.4, 0.3, 0.1])
    outside = np.array([False, True, True, True])
    popularity = np.array([0.5, 0.5, 0.05, 0.01])
    order, flags = rerank.explore(mean, np.zeros(4), outside, k=2, n_slots=1, popularity=popularity)
    assert order[flags].tolist() == [1]  # weight 0: the bound alone
    # weight 1 ranks by lift: 0.4 / 0.5 = 0.8, 0.3 / 0.05 = 6, 0.1 / 0.01 = 10 -> item 3
    order, flags = rerank.explore(mean, np.zeros(4), outside, k=2, n_slots=1, popularity=popularity,
                                  novelty_weight=1.0)
    assert order[flags].tolist() == [3]
    # weight 0.5: 0.4 / 0.71 = 0.57, 0.3 / 0.22 = 1.34, 0.1 / 0.1 = 1.0 -> item 2
    order, flags = rerank.explore(mean, np.zeros(4), outside, k=2, n_slots=1, popularity=popularity,
                                  novelty_weight=0.5)
    assert order[flags].tolist() == [2]
    with pytest.raises(ValueError, match="novelty_weight > 0 needs popularity"):
        rerank.explore(mean, np.zeros(4), outside, k=2, n_slots=1, novelty_weight=1.0)
    with pytest.raises(ValueError, match="popularity must be > 0"):
        rerank.explore(mean, np.zeros(4), outside, k=2, n_slots=1, novelty_weight=1.0,
                       popularity=np.array([0.5, 0.0, 0.1, 0.1]))


def test_sampled_probes_log_the_probability_of_each_draw():
    mean = np.array([0.9, 0.5, 0.4, 0.3])
    outside = np.array([False, True, True, True])
    draw = lambda seed: rerank.explore_with_propensity(  # noqa: E731
        mean, np.zeros(4), outside, k=3, n_slots=2, temperature=1.0, rng=np.random.default_rng(seed),
        placement="tail")
    order, flags, propensity = draw(7)
    # the same seed, the same list and probabilities
    again = draw(7)
    assert order.tolist() == again[0].tolist() and propensity.tolist() == again[2].tolist()
    # exploit slot: 1.0; places 0, 1, 2 weigh 1, e^-1, e^-2: the first probe's probability is
    # its weight over all three, the second's its weight over the two left
    weights = {1: 1.0, 2: np.exp(-1.0), 3: np.exp(-2.0)}
    first, second = order[flags].tolist()
    assert propensity[~flags].tolist() == [1.0]
    assert propensity[flags][0] == pytest.approx(weights[first] / sum(weights.values()))
    assert propensity[flags][1] == pytest.approx(weights[second] / (sum(weights.values()) - weights[first]))
    # over many seeds the best-placed probe comes first about 1 / (1 + e^-1 + e^-2) = 0.67 of the time
    firsts = [draw(seed)[0][1] for seed in range(400)]
    assert np.mean(np.array(firsts) == 1) == pytest.approx(1 / sum(weights.values()), abs=0.07)
    # temperature 0: deterministic, probability 1 everywhere
    _, _, certain = rerank.explore_with_propensity(mean, np.zeros(4), outside, k=3, n_slots=2)
    assert certain.tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="temperature > 0 needs a seeded numpy Generator"):
        rerank.explore(mean, np.zeros(4), outside, k=3, n_slots=2, temperature=1.0)


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


# --- frames: what the Python models call ---------------------------------------------------

import polars as pl  # noqa: E402


def _toy_tables():
    items = pl.DataFrame({
        "item_id": [1, 2, 3, 4, 5, 6, 7],
        "title": ["Alpha", "Beta", "Gamma", "Delta", "Epsilon", "Zeta", "Eta"],
        "genres": [["Drama"], ["Drama", "Crime"], ["Comedy"], ["Documentary"], ["Horror", "Drama"], [], ["Western"]],
    })
    fit_events = pl.DataFrame({
        "purpose": ["holdout", "holdout", "served", "served", "served", "holdout"],
        "user_id": [10, 10, 10, 10, 10, 20],
        "item_id": [1, 2, 1, 2, 3, 1],
        "position": [1, 2, 1, 2, 3, 1],
    })
    candidates = pl.DataFrame({
        "purpose": ["served"] * 4 + ["holdout"] * 6 + ["holdout"] * 3,
        "user_id": [10] * 4 + [10] * 6 + [20] * 3,
        "rank": [1, 2, 3, 4, 1, 2, 3, 4, 5, 6, 1, 2, 3],
        "item_id": [4, 5, 6, 7, 3, 4, 5, 6, 7, 3, 1, 4, 2],
        "score": [0.4, 0.3, 0.2, 0.1, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.6, 0.5, 0.4],
    })
    # what recs.lm_candidate_interests holds for these candidates (the rule is SQL's,
    # sql/macros/interests.sql)
    flags = pl.DataFrame({
        "purpose": ["served"] * 4 + ["holdout"] * 5 + ["holdout"] * 3,
        "user_id": [10] * 4 + [10] * 5 + [20] * 3,
        "item_id": [4, 5, 6, 7, 3, 4, 5, 6, 7, 1, 4, 2],
        "is_new_interest": [True, False, False, True, True, True, False, False, True, False, True, False],
        "probed_interest": ["Documentary", None, None, "Western", "Comedy", "Documentary", "Horror", None, "Western",
                            None, "Documentary", None],
    })
    return items, fit_events, candidates, flags


def test_candidates_sort_by_purpose_user_rank_and_drop_history_and_repeats():
    items, fit_events, candidates, _ = _toy_tables()
    histories = rerank.purpose_histories(fit_events)
    table = rerank.Candidates.from_frame(candidates.reverse(), histories)
    assert table.groups.rows() == [("holdout", 10), ("holdout", 20), ("served", 10)]
    assert table.offsets.tolist() == [0, 5, 7, 11]
    # holdout user 10 had item 3 twice among the candidates: it stays once; holdout user 20
    # has item 1 in history: it goes
    assert table.frame.filter(pl.col("user_id") == 10, pl.col("purpose") == "holdout")["item_id"].to_list() == [3, 4, 5, 6, 7]
    assert table.frame.filter(pl.col("user_id") == 20)["item_id"].to_list() == [4, 2]
    padded = pl.concat([candidates, pl.DataFrame({"purpose": ["served"], "user_id": [10], "rank": [5],
                                                  "item_id": [9], "score": [float("-inf")]})])
    assert rerank.Candidates.from_frame(padded).frame.height == candidates.height - 1
    with pytest.raises(ValueError, match=r"missing \['score'\]"):
        rerank.Candidates.from_frame(candidates.drop("score"))


def test_lists_frame_has_the_list_columns_and_types():
    items, fit_events, candidates, _ = _toy_tables()
    table = rerank.Candidates.from_frame(candidates, rerank.purpose_histories(fit_events))
    lists = rerank.mmr_lists(table, np.eye(table.frame.height), k=3, lam=0.5)
    assert dict(lists.schema) == rerank.LIST_SCHEMA
    assert lists.group_by("purpose", "user_id").agg(pl.col("rank").max())["rank"].sort().to_list() == [2, 3, 3]
    assert (lists["strategy"] == "lm_mmr").all()
    assert lists.filter(pl.col("user_id") == 20)["item_id"].to_list() == [4, 2]


def test_exploit_lists_keep_the_lm_order():
    _, fit_events, candidates, _ = _toy_tables()
    table = rerank.Candidates.from_frame(candidates, rerank.purpose_histories(fit_events))
    lists = rerank.exploit_lists(table, 2)
    assert lists.select("purpose", "user_id", "rank", "item_id").rows() == [
        ("holdout", 10, 1, 3), ("holdout", 10, 2, 4), ("holdout", 20, 1, 4), ("holdout", 20, 2, 2),
        ("served", 10, 1, 4), ("served", 10, 2, 5),
    ]


def test_history_genre_mix_is_stecks_p_of_g_given_u():
    items, fit_events, candidates, _ = _toy_tables()
    histories = rerank.purpose_histories(fit_events)
    table = rerank.Candidates.from_frame(candidates, histories)
    mix = rerank.history_genre_mix(table.groups, histories, items)
    _, names = rerank.genre_matrix(np.array([1]), items)
    as_dict = [{n: round(float(v), 3) for n, v in zip(names, row) if v} for row in mix]
    # holdout 10: Drama (1) and Drama+Crime (1/2 each); holdout 20: Drama; served 10: all three
    assert as_dict == [
        {"Drama": 0.75, "Crime": 0.25},
        {"Drama": 1.0},
        {"Drama": 0.5, "Crime": 0.167, "Comedy": 0.333},
    ]


def test_interest_flags_follow_the_candidate_rows_and_refuse_a_stale_table():
    items, fit_events, candidates, flags = _toy_tables()
    table = rerank.Candidates.from_frame(candidates, rerank.purpose_histories(fit_events))
    outside, probes = rerank.interest_flags_of(table, flags.reverse())
    rows = table.frame.with_columns(outside=pl.Series(outside), probe=pl.Series(probes, dtype=pl.Utf8))
    # a probe is named only where the item is a new interest
    assert rows.filter(pl.col("purpose") == "holdout", pl.col("user_id") == 10).select(
        "item_id", "outside", "probe").rows() == [
        (3, True, "Comedy"), (4, True, "Documentary"), (5, False, None), (6, False, None), (7, True, "Western"),
    ]
    assert rows.filter(pl.col("purpose") == "served")["outside"].to_list() == [True, False, False, True]
    with pytest.raises(ValueError, match=r"1 of 11 candidates have no is_new_interest .* user 20, item 2"):
        rerank.interest_flags_of(table, flags.filter((pl.col("user_id") != 20) | (pl.col("item_id") != 2)))


def test_aligned_offsets_follow_the_groups_and_keep_each_groups_row_order():
    groups = pl.DataFrame({"purpose": ["served", "holdout", "holdout"], "user_id": [10, 20, 10]})
    rows = pl.DataFrame({
        "purpose": ["holdout", "holdout", "served", "holdout", "served", "holdout", "served"],
        "user_id": [10, 10, 10, 10, 10, 30, 10],
        "item_id": [5, 3, 9, 4, 8, 1, 7],
    })
    aligned, offsets = rerank.aligned_offsets(groups, rows)
    assert offsets.tolist() == [0, 3, 3, 6]  # holdout 20 has no rows; holdout 30 is no group
    assert aligned["item_id"].to_list() == [9, 8, 7, 5, 3, 4]


def test_list_lengths_and_cut_lists_give_each_purpose_its_length():
    assert rerank.list_lengths(5, [5, 10, 20]) == {"served": 5, "holdout": 20}
    with pytest.raises(ValueError, match="served lists: expected var k to give an integer >= 1, found 0"):
        rerank.list_lengths(0, [10])
    lists = pl.DataFrame({"purpose": ["served"] * 3 + ["holdout"] * 3 + ["other"], "rank": [1, 2, 3, 1, 2, 3, 9]})
    assert rerank.cut_lists(lists, {"served": 2, "holdout": 3}).rows() == [
        ("served", 1), ("served", 2), ("holdout", 1), ("holdout", 2), ("holdout", 3), ("other", 9),
    ]


def test_a_share_between_whole_slots_gives_the_extra_slot_to_the_lists_that_lose_least():
    # 4 users, 4 candidates each; the third candidate (the one a second probe pushes out of a
    # 4-item list) scores 0.3, 0.1, 0.4, 0.2
    third = {1: 0.3, 2: 0.1, 3: 0.4, 4: 0.2}
    candidates = pl.DataFrame({
        "purpose": ["holdout"] * 16, "user_id": [u for u in (1, 2, 3, 4) for _ in range(4)],
        "rank": [1, 2, 3, 4] * 4, "item_id": list(range(100, 116)),
        "score": [s for u in (1, 2, 3, 4) for s in (0.9, 0.5, third[u], 0.05)]})
    table = rerank.Candidates.from_frame(candidates)
    segments = pl.DataFrame({"purpose": ["holdout"] * 4, "user_id": [1, 2, 3, 4], "rfm_segment": ["Lost"] * 4})
    # 0.375 x 4 = 1.5 slots: every list one, the two lists whose pushed-out candidate scores lowest two
    assert rerank.slots_per_group(table.groups, segments, {"Lost": 0.375}, 4, 0.1,
                                  candidates=table, seed=7).tolist() == [1, 2, 1, 2]
    # 0.3125 x 4 = 1.25: one list of the four gets the second slot, the cheapest
    assert rerank.slots_per_group(table.groups, segments, {"Lost": 0.3125}, 4, 0.1,
                                  candidates=table).tolist() == [1, 2, 1, 1]
    # a whole number of slots is every user's; without candidates each user's share is rounded
    assert rerank.slots_per_group(table.groups, segments, {"Lost": 0.5}, 4, 0.1,
                                  candidates=table).tolist() == [2, 2, 2, 2]
    assert rerank.slots_per_group(table.groups, segments, {"Lost": 0.375}, 4, 0.1).tolist() == [2, 2, 2, 2]
    with pytest.raises(ValueError, match="must be in \\[0, 1\\]"):
        rerank.slots_per_group(table.groups, segments, {"Lost": 1.5}, 4, 0.1, candidates=table)


def test_explore_lists_probe_outside_with_readable_reasons_and_follow_the_slots():
    items, fit_events, candidates, flags = _toy_tables()
    histories = rerank.purpose_histories(fit_events)
    table = rerank.Candidates.from_frame(candidates, histories)
    outside, probes = rerank.interest_flags_of(table, flags.with_columns(
        is_new_interest=pl.when(pl.col("user_id") == 20).then(False).otherwise(pl.col("is_new_interest"))))
    n = table.frame.height
    mean, std = table.frame["score"].to_numpy(), np.full(n, 0.01)
    # segments per purpose: user 10 is 'New' in the holdout history and 'Champions' served
    segments = pl.DataFrame({"purpose": ["holdout", "holdout", "served"], "user_id": [10, 20, 10],
                             "rfm_segment": ["New", "Champions", "Champions"]})
    shares = {"New": 0.5, "Champions": 0.0}
    assert rerank.slots_per_group(table.groups, segments, shares, k=4, default_share=0.25).tolist() == [2, 0, 0]
    # lengths per purpose: 4 slots of a holdout list, 2 of a served one
    assert rerank.slots_per_group(table.groups, segments.with_columns(rfm_segment=pl.lit("Lost")), shares,
                                  k={"holdout": 4, "served": 2}, default_share=0.5).tolist() == [2, 2, 1]
    with pytest.raises(ValueError, match="missing \\['purpose'\\]"):
        rerank.slots_per_group(table.groups, segments.drop("purpose"), shares, k=4, default_share=0.25)
    slots = np.array([2, 0, 2])
    lists = rerank.explore_lists(table, mean, std, outside, probes, slots, k=4, seed=1)
    probes_rows = lists.filter(pl.col("is_exploration"))
    assert probes_rows.group_by("purpose", "user_id").len().sort("purpose", "user_id").rows() == [
        ("holdout", 10, 1), ("served", 10, 1),
    ]
    holdout_10 = lists.filter(pl.col("purpose") == "holdout", pl.col("user_id") == 10)
    # exploit slots: 3 and 4 (the first two by score); probes among the rest outside: only 7,
    # so the other probe slot falls back to the exploit order (item 5)
    assert holdout_10.select("rank", "item_id", "is_exploration").rows() == [
        (1, 3, False), (2, 4, False), (3, 5, False), (4, 7, True),
    ]
    assert holdout_10["reason"].to_list()[3] == "explore Western (mean 0.1, spread 0.01)"
    assert lists.filter(~pl.col("is_exploration"))["reason"].is_null().all()
    # probed_interest: the genre each probe opens, NULL on exploit slots; beside the list columns
    assert dict(lists.schema) == rerank.EXPLORE_LIST_SCHEMA
    assert list(lists.columns) == [*list(rerank.LIST_SCHEMA)[:-1], "probed_interest", "propensity", "reason"]
    assert holdout_10["probed_interest"].to_list() == [None, None, None, "Western"]
    # deterministic UCB: every slot was chosen with probability 1
    assert holdout_10["propensity"].to_list() == [1.0, 1.0, 1.0, 1.0]
    assert lists.filter(~pl.col("is_exploration"))["probed_interest"].is_null().all()
    assert lists.filter(pl.col("is_exploration"))["probed_interest"].is_not_null().all()
    # like_reasons fills the exploit reasons and keeps the column where it is
    vectors = pl.DataFrame({"item_id": list(range(1, 8)), "embedding": [[1.0, float(i)] for i in range(1, 8)]})
    filled = rerank.like_reasons(lists, histories, vectors, items)
    assert filled.columns == lists.columns and filled["reason"].is_not_null().all()
    assert filled["probed_interest"].to_list() == lists["probed_interest"].to_list()


def test_like_reasons_name_the_closest_history_item_of_the_same_purpose():
    items, fit_events, candidates, _ = _toy_tables()
    histories = rerank.purpose_histories(fit_events)
    table = rerank.Candidates.from_frame(candidates, histories)
    # item 4 points like item 2, item 7 like item 1; item 5 like item 3
    vectors = {1: [1.0, 0.0, 0.0], 2: [0.0, 1.0, 0.0], 3: [0.0, 0.0, 1.0], 4: [0.1, 1.0, 0.0],
               5: [0.0, 0.2, 1.0], 6: [0.0, 0.0, 0.0], 7: [1.0, 0.1, 0.1]}
    embeddings = pl.DataFrame({"item_id": list(vectors), "embedding": list(vectors.values())})
    lists = rerank.exploit_lists(table, 3).with_columns(
        reason=pl.when(pl.col("item_id") == 6).then(pl.lit("kept")).otherwise(None)
    )
    reasons = rerank.like_reasons(lists, histories, embeddings, items)
    assert reasons.select("purpose", "user_id", "item_id", "reason").rows() == [
        ("holdout", 10, 3, "like Alpha"),  # orthogonal to both history items: the first wins
        ("holdout", 10, 4, "like Beta"),
        ("holdout", 10, 5, "like Beta"),
        ("holdout", 20, 4, "like Alpha"),
        ("holdout", 20, 2, "like Alpha"),
        ("served", 10, 4, "like Beta"),
        ("served", 10, 5, "like Gamma"),
        ("served", 10, 6, "kept"),
    ]


def test_rerank_settings_from_vars_merge_defaults_and_reject_unknown_keys():
    settings = rerank.RerankSettings.from_vars({"mmr_lambda": 0.5, "explore_shares": {"New": 0.4}})
    assert settings.mmr_lambda == 0.5 and settings.explore_shares == {"New": 0.4}
    assert settings.calibration_lambda == rerank.RerankSettings().calibration_lambda
    with pytest.raises(ValueError, match=r"unknown rerank settings \['mmr_lamda'\]"):
        rerank.RerankSettings.from_vars({"mmr_lamda": 0.5})
    with pytest.raises(ValueError, match="explore_rule: expected 'ucb' or 'thompson', found 'eps'"):
        rerank.RerankSettings.from_vars({"explore_rule": "eps"})


def test_frames_accept_an_empty_candidate_table():
    items, fit_events, candidates, flags = _toy_tables()
    histories = rerank.purpose_histories(fit_events)
    table = rerank.Candidates.from_frame(candidates.clear(), histories)
    assert table.groups.height == 0 and table.offsets.tolist() == [0]
    empty = np.zeros(0)
    outside, probes = rerank.interest_flags_of(table, flags)
    for lists in (
        rerank.exploit_lists(table, 5),
        rerank.mmr_lists(table, np.zeros((0, 3)), 5, 0.5),
        rerank.calibrated_lists(table, np.zeros((0, 2)), np.zeros((0, 2)), 5, 0.5),
        rerank.explore_lists(table, empty, empty, outside, probes, 2, 5),
    ):
        assert lists.height == 0
        assert dict(lists.schema) in (rerank.LIST_SCHEMA, rerank.EXPLORE_LIST_SCHEMA)
        assert rerank.like_reasons(lists, histories, pl.DataFrame({"item_id": [1], "embedding": [[1.0]]}), items).height == 0



def _toy_tradeoff_inputs():
    items, fit_events, candidates, flags = _toy_tables()
    holdout = [frame.filter(pl.col("purpose") == "holdout") for frame in (fit_events, candidates, flags)]
    fit_events, candidates, flags = holdout
    uncertainty = candidates.select("purpose", "user_id", "item_id", mc_mean="score", mc_std=pl.lit(0.01))
    popularity = items.select(pl.lit("holdout").alias("purpose"), "item_id",
                              novelty_bits=pl.col("item_id").cast(pl.Float64))
    embeddings = pl.DataFrame({"item_id": list(range(1, 8)),
                               "embedding": [[1.0, float(i % 3), float(i % 2)] for i in range(1, 8)]})
    segments = pl.DataFrame({"purpose": ["holdout", "holdout"], "user_id": [10, 20], "rfm_segment": ["Lost", "New"]})
    return dict(candidates=candidates, fit_events=fit_events, items=items, embeddings=embeddings,
                uncertainty=uncertainty, interests=flags, item_popularity=popularity, segments=segments)


def test_tradeoff_lists_rebuild_each_setting_with_the_served_lists_code():
    inputs = _toy_tradeoff_inputs()
    settings = rerank.RerankSettings(
        mmr_lambda=0.5, calibration_lambda=0.5, explore_shares={"New": 0.5}, explore_default_share=0.0,
        tradeoff_k=3, tradeoff_mmr_lambdas=(1.0, 0.5), tradeoff_calibration_lambdas=(0.0, 0.5),
        tradeoff_explore_shares=(0.0, 0.5),
    )
    seen = []
    grid = rerank.tradeoff_lists(settings, **inputs, list_length=4, max_rank=2, seed=1,
                                 progress=lambda done, total, last: seen.append((done, total, last)))
    assert dict(grid.schema) == rerank.TRADEOFF_SCHEMA
    settings_rows = grid.select("strategy", "parameter", "value", "setting", "is_default").unique(maintain_order=True)
    assert settings_rows.rows() == [
        ("lm", None, None, "exploit", True),
        ("lm_mmr", "lambda", 1.0, "lambda=1", False),
        ("lm_mmr", "lambda", 0.5, "lambda=0.5", True),
        ("lm_calibrated", "lambda", 0.0, "lambda=0", False),
        ("lm_calibrated", "lambda", 0.5, "lambda=0.5", True),
        ("lm_explore", "share", 0.0, "share=0", False),
        ("lm_explore", "share", 0.5, "share=0.5", False),
        ("lm_explore", "share", None, "share=segments", True),
    ]
    assert rerank.tradeoff_setting_count(settings) == 8
    assert seen[-1] == (8, 8, "lm_explore share=segments") and [s[0] for s in seen] == list(range(1, 9))

    def rows(strategy, setting):
        part = grid.filter(pl.col("strategy") == strategy, pl.col("setting") == setting)
        return part.select("user_id", "rank", "item_id", "is_exploration").rows()

    # holdout user 10's candidates are items 3, 4, 5, 6, 7 (1 and 2 are history), user 20's 4
    # and 2 (1 is history). MMR and calibration read the LM's first max_rank=2 candidates...
    exploit = [(10, 1, 3, False), (10, 2, 4, False), (20, 1, 4, False)]
    assert rows("lm", "exploit") == exploit
    # ...and, switched off, give the exploit list back
    assert rows("lm_mmr", "lambda=1") == exploit
    assert rows("lm_calibrated", "lambda=0") == exploit
    # exploration reads the whole pool; lists of 4 are kept to tradeoff_k=3 (item 6 goes)
    assert rows("lm_explore", "share=0") == [(10, 1, 3, False), (10, 2, 4, False), (10, 3, 5, False),
                                             (20, 1, 4, False), (20, 2, 2, False)]
    # half of user 20's 2 slots: item 4 is its only new interest, probed in the last slot
    assert rows("lm_explore", "share=0.5")[-2:] == [(20, 1, 2, False), (20, 2, 4, True)]
    # by segment: user 20 ('New') explores, user 10 ('Lost', default share 0) does not
    by_segment = grid.filter(pl.col("setting") == "share=segments")
    assert by_segment.group_by("user_id").agg(pl.col("is_exploration").sum()).sort("user_id").rows() == [(10, 0), (20, 1)]
    # the other settings are exactly the served lists' functions over the same candidates
    histories = rerank.purpose_histories(inputs["fit_events"])
    ranked = rerank.Candidates.from_frame(inputs["candidates"], histories, max_rank=2)
    vectors = rerank.embedding_matrix(ranked.item_ids(), inputs["embeddings"])
    served_mmr = rerank.mmr_lists(ranked, vectors, 4, 0.5).filter(pl.col("rank") <= 3)
    assert rows("lm_mmr", "lambda=0.5") == served_mmr.select("user_id", "rank", "item_id", "is_exploration").rows()

# --- MC-dropout uncertainty (recs.lm_candidate_uncertainty) --------------------------------


def _tiny_lm(rnn_weight: float = 0.5):
    import dataclasses

    import torch

    from duckrec.ml import Mixture, TrainedLM, build_catalogue
    from duckrec.ml.model import ItemLM, LMConfig

    cat = build_catalogue(np.arange(100, 112))
    n = cat.n_items
    torch.manual_seed(0)
    model = ItemLM(
        LMConfig(n, len(cat.token_names), embedding_dim=8, hidden_dim=16, dropout=0.3),
        torch.from_numpy(cat.token_offsets), torch.from_numpy(cat.token_index), torch.ones(n + 1),
    )
    model.eval()
    lm = TrainedLM(cat, model, Mixture(), context=6)
    return dataclasses.replace(lm, mixture=Mixture(rnn_weight, 2.0, 0.7, 3, 2, 0.5))


def _tiny_histories():
    rng = np.random.default_rng(5)
    # lengths 0..9: an empty history, shorter and longer than the context
    return [rng.integers(1, 13, size=n) for n in (4, 0, 9, 2, 7, 1)]


def _dropout_states(lm, histories):
    """score._states with the model's output dropout drawn only at each user's last
    position (ItemLM.last_states), in _states's batches."""
    import torch

    from duckrec.ml.sequences import pad_histories

    model = lm.model
    vectors = model.item_vectors()
    out = model.initial_state().expand(len(histories), -1).clone()
    lengths = np.array([min(len(h), lm.context or len(h)) for h in histories])
    order = np.argsort(-lengths, kind="stable")
    order = order[lengths[order] > 0]
    for start in range(0, len(order), 512):
        rows = order[start:start + 512]
        inputs, lens = pad_histories([histories[i] for i in rows], lm.context)
        out[torch.from_numpy(rows)] = model.last_states(inputs, lens - 1, vectors)
    return out


def test_last_states_are_forwards_states_at_the_last_inputs():
    import torch

    from duckrec.ml import score

    lm = _tiny_lm(0.5)
    histories = _tiny_histories()
    with torch.no_grad():
        lm.model.eval()
        np.testing.assert_allclose(_dropout_states(lm, histories).numpy(),
                                   score._states(lm.model, histories, lm.context, 512).numpy(), rtol=1e-6, atol=1e-7)


def _naive_mc(lm, histories, cand, passes, seed):
    """MC dropout the plain way: every pass recomputes the whole mixture for every item
    (score._states + score.next_item_scores), on one torch thread; the reference for
    score_candidates_mc's shortcuts."""
    import torch

    from duckrec.ml import score

    bigram = lm.mixture.fit_ngram(histories, lm.catalogue.n_items)
    pick = torch.from_numpy(np.clip(cand - 1, 0, None))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    draws = []
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            lm.model.train()
            for _ in range(passes):
                states = _dropout_states(lm, histories)
                draws.append(torch.gather(score.next_item_scores(lm, states, histories, bigram), 1, pick))
    finally:
        lm.model.eval()
        torch.set_num_threads(threads)
    stack = torch.stack(draws).double()
    mean, std = stack.mean(0).numpy(), stack.std(0).numpy()
    mean[cand == 0], std[cand == 0] = 0.0, 0.0
    return mean, std


@pytest.mark.parametrize("rnn_weight", [0.5, 1.0, 0.0])
def test_score_candidates_mc_matches_a_naive_per_pass_loop(rnn_weight):
    from duckrec.ml import score_candidates_mc

    lm = _tiny_lm(rnn_weight)
    histories = _tiny_histories()
    cand = np.array([[1, 2, 0], [3, 4, 5], [12, 11, 10], [6, 0, 0], [7, 8, 9], [1, 5, 9]])
    expected = _naive_mc(lm, histories, cand, passes=6, seed=11)
    got = score_candidates_mc(lm, histories, cand, passes=6, seed=11)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-4, atol=1e-9)
    assert got[0][0, 2] == 0 and got[1][0, 2] == 0
    # the spread comes from the recurrent half only: none in a pure n-gram mixture
    assert (got[1][0, :2] > 0).all() if rnn_weight > 0 else not got[1].any()


def test_mc_dropout_on_a_big_catalogue_splits_the_softmax_into_head_and_a_sampled_tail(monkeypatch):
    """Past MC_SPLIT_ITEMS items a pass scores each user's candidates and top items exactly
    and estimates the rest from a uniform sample: all of the rest drawn, it is the exact
    softmax; a few drawn, an estimate that never puts a candidate above probability 1."""
    from duckrec.ml import score, score_candidates_mc

    lm = _tiny_lm(1.0)
    histories = _tiny_histories()
    cand = np.array([[1, 2, 0], [3, 4, 5], [12, 11, 10], [6, 0, 0], [7, 8, 9], [1, 5, 9]])
    exact = score_candidates_mc(lm, histories, cand, passes=6, seed=11)
    monkeypatch.setattr(score, "MC_SPLIT_ITEMS", 1)
    monkeypatch.setattr(score, "MC_HEAD_ITEMS", 2)
    monkeypatch.setattr(score, "MC_TAIL_ITEMS", 100)  # more than the catalogue: every item drawn
    whole = score_candidates_mc(lm, histories, cand, passes=6, seed=11)
    np.testing.assert_allclose(whole[0], exact[0], rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(whole[1], exact[1], rtol=1e-4, atol=1e-7)  # the drawn order rounds apart
    monkeypatch.setattr(score, "MC_TAIL_ITEMS", 2)  # 2 of the 12 items: an estimate
    sampled = score_candidates_mc(lm, histories, cand, passes=6, seed=11)
    assert np.array_equal(sampled[0], score_candidates_mc(lm, histories, cand, passes=6, seed=11)[0])
    assert np.isfinite(sampled[0]).all() and (sampled[0] <= 1).all() and not np.allclose(sampled[0], exact[0])
    assert sampled[0][0, 2] == 0 and sampled[1][0, 2] == 0
    real = cand > 0
    np.testing.assert_allclose(sampled[0][real], exact[0][real], rtol=1.0)  # within 2 x on 2 of 12 items


def test_score_candidates_mc_is_seeded_and_leaves_torch_as_it_was():
    import torch

    from duckrec.ml import score_candidates_mc

    lm = _tiny_lm()
    histories = _tiny_histories()
    cand = np.tile(np.arange(1, 13), (len(histories), 1))
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = score_candidates_mc(lm, histories, cand, passes=4, seed=2)
    other = score_candidates_mc(lm, histories, cand, passes=4, seed=3, threads=2)
    assert torch.equal(torch.get_rng_state(), state) and torch.get_num_threads() == threads
    assert not lm.model.training
    again = score_candidates_mc(lm, histories, cand, passes=4, seed=2)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert not np.allclose(first[1], other[1])
    with pytest.raises(ValueError, match="passes >= 2"):
        score_candidates_mc(lm, histories, cand, passes=1, seed=2)
    with pytest.raises(ValueError, match=r"expected candidates \[6, C\]"):
        score_candidates_mc(lm, histories, cand[:2], passes=4, seed=2)


def test_candidate_uncertainty_round_trips_through_its_table():
    lm = _tiny_lm()
    items = lm.catalogue.item_ids
    fit_events = pl.DataFrame({
        "purpose": ["holdout"] * 3 + ["served"] * 4,
        "user_id": [1, 1, 2, 1, 1, 1, 2],
        "item_id": [int(items[i]) for i in (0, 1, 2, 0, 1, 3, 2)],
        "position": [1, 2, 1, 1, 2, 3, 1],
    })
    histories = rerank.purpose_histories(fit_events)
    candidates = pl.DataFrame({
        "purpose": ["holdout"] * 5 + ["served"] * 4,
        "user_id": [1, 1, 1, 2, 2, 1, 1, 2, 2],
        "rank": [1, 2, 3, 1, 2, 1, 2, 1, 2],
        "item_id": [int(items[i]) for i in (4, 5, 6, 7, 8, 4, 9, 10, 11)],
        "score": [0.3, 0.2, 0.1, 0.3, 0.2, 0.3, 0.2, 0.3, 0.2],
    })
    table = rerank.Candidates.from_frame(candidates)
    mean, std = rerank.candidate_uncertainty(lm, table, histories, passes=5, seed=1)
    assert (mean > 0).all() and (std > 0).all()
    # the purposes run in threads at once or one after the other: the same figures
    one = rerank.candidate_uncertainty(lm, table, histories, passes=5, seed=1, threads=1)
    assert np.array_equal(one[0], mean) and np.array_equal(one[1], std)
    frame = rerank.uncertainty_frame(table, mean, std)
    assert dict(frame.schema) == rerank.UNCERTAINTY_SCHEMA and frame.height == candidates.height
    # read back in another row order, and for a history-filtered candidate table
    back = rerank.uncertainty_of(table, frame.reverse())
    assert np.array_equal(back[0], mean) and np.array_equal(back[1], std)
    fewer = rerank.Candidates.from_frame(candidates.filter(pl.col("purpose") == "served"))
    assert np.array_equal(rerank.uncertainty_of(fewer, frame)[0], mean[table.frame["purpose"].to_numpy() == "served"])
    with pytest.raises(ValueError, match="1 of 9 candidates have no mc_mean"):
        rerank.uncertainty_of(table, frame.slice(1))


def test_item_rows_hold_one_row_per_item_and_rerank_as_the_full_matrix():
    data = _random_batch(4)
    offsets, scores = data["offsets"], data["scores"]
    n = scores.size
    rng = np.random.default_rng(9)
    items = rng.integers(0, 6, size=n)  # few distinct items, repeated across lists
    vectors, genres = rng.normal(size=(6, 5)), (rng.random((6, 4)) < 0.5).astype(float)
    rows = rerank.ItemRows(vectors, items)
    assert rows.shape == (n, 5) and rows.table.shape == (6, 5)
    assert np.array_equal(np.asarray(rows), vectors[items]) and np.array_equal(rows[[2, 0]], vectors[items[[2, 0]]])
    full = rerank.mmr_batch(offsets, scores, vectors[items], 6, 0.6)
    held = rerank.mmr_batch(offsets, scores, rows, 6, 0.6)
    assert np.array_equal(full.rows, held.rows) and np.array_equal(full.rank, held.rank)
    targets = data["targets"][:, :4]
    full = rerank.calibrate_batch(offsets, scores, genres[items], targets, 6, 0.7)
    held = rerank.calibrate_batch(offsets, scores, rerank.ItemRows(genres, items), targets, 6, 0.7)
    assert np.array_equal(full.rows, held.rows)
    with pytest.raises(ValueError, match="expected 3 rows"):
        rerank.mmr_batch(np.array([0, 3]), scores[:3], rows, 2, 0.5)
