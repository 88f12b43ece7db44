"""Re-ranking of a user's language-model candidates: MMR, calibration, exploration.

Every function works on one user's top-N candidates (the LM's item scores, in the LM's
candidate order) and returns an *order*: positions into those candidates, best first.
The ``*_batch`` functions do the same for many users at once over a long table of
candidates laid out group after group (``offsets[g]:offsets[g + 1]`` are group g's rows),
and return flat row numbers into that table, so a caller can take its own columns along.

Ties always break by candidate order, so a re-ranker that is switched off (MMR with
``lam=1``, calibration with ``lam=0``, exploration with no slots) gives back exactly the
score order, stably sorted.

The last section lifts all of this to polars frames of the warehouse's tables
(``Candidates``, ``*_lists``, reasons, MC-dropout uncertainty), so the Python models that
build ``recs.lm_*_lists`` and ``eval.tradeoff_lists`` stay a few lines and share one code path.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import polars as pl

from .settings import settings_values

__all__ = [
    "aligned_offsets",
    "calibrate",
    "calibrate_batch",
    "calibrated_lists",
    "candidate_uncertainty",
    "Candidates",
    "cut_lists",
    "embedding_matrix",
    "exploit_lists",
    "exploration_positions",
    "exploration_reason",
    "exploration_slots",
    "explore",
    "explore_batch",
    "explore_with_propensity",
    "EXPLORE_LIST_SCHEMA",
    "explore_lists",
    "ExploreRule",
    "genre_distribution",
    "genre_matrix",
    "group_offsets",
    "history_genre_mix",
    "interest_flags_of",
    "item_lookup",
    "like_reasons",
    "list_lengths",
    "LIST_SCHEMA",
    "lists_frame",
    "minmax",
    "mmr",
    "mmr_batch",
    "mmr_lists",
    "most_similar_rows",
    "Placement",
    "popularity_of",
    "purpose_histories",
    "RankedRows",
    "RerankSettings",
    "score_order",
    "score_order_batch",
    "slots_per_group",
    "uncertainty_frame",
    "uncertainty_of",
    "UNCERTAINTY_SCHEMA",
]

ExploreRule = Literal["ucb", "thompson"]
Placement = Literal["spread", "tail"]

CALIBRATION_ALPHA = 0.01  # Steck's smoothing of q, so KL stays finite when a genre is missing
_GROUPS_PER_CHUNK = 256  # bounds the padded (groups x N x N) similarity block to ~10 MB at N=100


@dataclass(frozen=True)
class RankedRows:
    """Re-ranked lists of many groups, as rows of the input candidate table.

    ``rows[j]`` is a row number into the candidate table, ``group[j]`` its group and
    ``rank[j]`` its 1-based position in that group's list; ``is_exploration[j]`` marks
    exploration slots (all False for MMR and calibration); ``propensity[j]``, where the
    re-ranker logs one (exploration), the probability with which the policy chose the row.
    """

    rows: np.ndarray
    group: np.ndarray
    rank: np.ndarray
    is_exploration: np.ndarray
    propensity: np.ndarray | None = None


# --- helpers -----------------------------------------------------------------------------


def score_order(scores: np.ndarray) -> np.ndarray:
    """Candidate positions by descending score, ties by candidate order."""
    scores = _as_vector("scores", scores)
    return np.argsort(-scores, kind="stable")


def minmax(scores: np.ndarray) -> np.ndarray:
    """Scores rescaled to [0, 1]; all-equal scores map to 1 (every candidate equally relevant)."""
    scores = _as_vector("scores", scores)
    if scores.size == 0:
        return scores.astype(np.float64)
    low, high = float(scores.min()), float(scores.max())
    if high == low:
        return np.ones_like(scores, dtype=np.float64)
    return (scores.astype(np.float64) - low) / (high - low)


def group_offsets(*keys: np.ndarray) -> np.ndarray:
    """Offsets of the runs of equal consecutive keys: group g is ``offsets[g]:offsets[g+1]``.

    The table must already be sorted (or at least grouped) by the keys; a key that comes
    back after another one starts a new group, which is what a caller sorted by key wants.
    """
    if not keys:
        raise ValueError("group_offsets: expected at least one key column, found none")
    n = len(keys[0])
    for i, key in enumerate(keys):
        if len(key) != n:
            raise ValueError(
                f"group_offsets: key columns must have equal length, column 0 has {n} rows "
                f"and column {i} has {len(key)}"
            )
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for key in keys:
        key = np.asarray(key)
        change[1:] |= key[1:] != key[:-1]
    starts = np.flatnonzero(change)
    return np.append(starts, n).astype(np.int64)


def genre_distribution(weights: np.ndarray) -> np.ndarray:
    """Rows of genre weights (multi-hot or weighted) normalised to sum 1; all-zero rows stay 0."""
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 2:
        raise ValueError(
            f"genre_distribution: expected a 2-d (items x genres) array, found shape {weights.shape}"
        )
    if (weights < 0).any():
        raise ValueError("genre_distribution: genre weights must be >= 0, found a negative weight")
    totals = weights.sum(axis=1, keepdims=True)
    return np.divide(weights, totals, out=np.zeros_like(weights), where=totals > 0)


# --- MMR -----------------------------------------------------------------------------------


def mmr(scores: np.ndarray, item_vectors: np.ndarray, k: int, lam: float) -> np.ndarray:
    """Maximal marginal relevance (Carbonell and Goldstein, 1998) over one user's candidates.

    Greedily picks argmax ``lam * rel(i) - (1 - lam) * max_{j picked} cos(i, j)``, with
    ``rel`` the scores min-max rescaled to [0, 1] so that ``lam`` means the same for every
    user whatever the spread of their scores. Returns at most ``k`` candidate positions.
    """
    scores = _as_vector("scores", scores)
    vectors = _as_matrix("item_vectors", item_vectors, rows=scores.size)
    offsets = np.array([0, scores.size], dtype=np.int64)
    return mmr_batch(offsets, scores, vectors, k, lam).rows


def mmr_batch(
    offsets: np.ndarray, scores: np.ndarray, item_vectors: np.ndarray, k: int, lam: float
) -> RankedRows:
    """:func:`mmr` for every group of a long candidate table (see the module docstring)."""
    offsets = _check_offsets(offsets, len(scores))
    scores = _as_vector("scores", scores)
    vectors = _as_matrix("item_vectors", item_vectors, rows=scores.size)
    _check_k(k)
    _check_lambda("lam", lam)
    if lam == 1.0:
        return score_order_batch(offsets, scores, k)
    unit = _unit_rows(vectors)
    return _chunked(offsets, k, lambda padded: _mmr_padded(padded, scores, unit, k, lam))


def _mmr_padded(padded: _Padded, scores: np.ndarray, unit: np.ndarray, k: int, lam: float):
    rel = _padded_minmax(padded, scores)
    vecs = np.where(padded.valid[:, :, None], unit[padded.rows], 0.0)
    n_groups, width = padded.valid.shape
    # nothing is picked yet, so no candidate is penalised for redundancy on the first pick
    max_sim = np.zeros((n_groups, width))
    available = padded.valid.copy()
    groups = np.arange(n_groups)
    picks = np.full((n_groups, min(k, width)), -1, dtype=np.int64)
    for step in range(picks.shape[1]):
        objective = lam * rel - (1.0 - lam) * max_sim
        objective[~available] = -np.inf
        best = objective.argmax(axis=1)
        has_pick = available[groups, best]
        picks[has_pick, step] = best[has_pick]
        available[groups[has_pick], best[has_pick]] = False
        # only the similarities to the item just picked: k matrix-vector products instead of
        # the full (N x N) Gram matrix per group, and einsum's own loop rather than a batched
        # BLAS call, whose threads stall when another process holds a core (10x slower here)
        max_sim = np.maximum(max_sim, np.einsum("gid,gd->gi", vecs, vecs[groups, best]))
    return picks


# --- calibration ---------------------------------------------------------------------------


def calibrate(
    scores: np.ndarray,
    item_genres: np.ndarray,
    target_mix: np.ndarray,
    k: int,
    lam: float,
    alpha: float = CALIBRATION_ALPHA,
) -> np.ndarray:
    """Calibrated re-ranking (Steck, RecSys 2018) of one user's candidates.

    Greedily maximises ``(1 - lam) * sum(rel) - lam * KL(p || q~)`` where ``p`` is
    ``target_mix`` (the user's history genre distribution), ``q`` the list's genre
    distribution (each item's genres normalised to sum 1, averaged over the list),
    ``q~ = (1 - alpha) * q + alpha * p`` and ``rel`` the min-max rescaled scores.
    ``lam=0`` gives the score order; a target with no mass gives the score order too,
    since there is nothing to calibrate to.
    """
    scores = _as_vector("scores", scores)
    genres = _as_matrix("item_genres", item_genres, rows=scores.size)
    target = np.asarray(target_mix, dtype=np.float64).reshape(1, -1)
    offsets = np.array([0, scores.size], dtype=np.int64)
    return calibrate_batch(offsets, scores, genres, target, k, lam, alpha).rows


def calibrate_batch(
    offsets: np.ndarray,
    scores: np.ndarray,
    item_genres: np.ndarray,
    target_mixes: np.ndarray,
    k: int,
    lam: float,
    alpha: float = CALIBRATION_ALPHA,
) -> RankedRows:
    """:func:`calibrate` for every group; ``target_mixes`` has one row per group."""
    offsets = _check_offsets(offsets, len(scores))
    scores = _as_vector("scores", scores)
    genres = _as_matrix("item_genres", item_genres, rows=scores.size)
    n_groups = offsets.size - 1
    targets = _as_matrix("target_mixes", target_mixes, rows=n_groups)
    if targets.shape[1] != genres.shape[1]:
        raise ValueError(
            f"calibrate: target_mixes has {targets.shape[1]} genres but item_genres has "
            f"{genres.shape[1]}; both must use the same genre columns"
        )
    _check_k(k)
    _check_lambda("lam", lam)
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"calibrate: alpha must be in (0, 1], found {alpha}")
    if lam == 0.0:
        return score_order_batch(offsets, scores, k)
    item_dist = genre_distribution(genres)
    target_dist = genre_distribution(targets)
    return _chunked(
        offsets,
        k,
        lambda padded: _calibrate_padded(padded, scores, item_dist, target_dist, k, lam, alpha),
    )


def _calibrate_padded(
    padded: _Padded,
    scores: np.ndarray,
    item_dist: np.ndarray,
    target_dist: np.ndarray,
    k: int,
    lam: float,
    alpha: float,
):
    rel = _padded_minmax(padded, scores)
    dist = np.where(padded.valid[:, :, None], item_dist[padded.rows], 0.0)
    p = target_dist[padded.group_index][:, None, :]
    # a user without any genre history has nothing to calibrate to: keep the score order
    weight = np.where(p.sum(axis=2) > 0, lam, 0.0)
    p_log = np.log(np.where(p > 0, p, 1.0))
    n_groups, width = padded.valid.shape
    mix_sum = np.zeros((n_groups, 1, dist.shape[2]))
    available = padded.valid.copy()
    groups = np.arange(n_groups)
    picks = np.full((n_groups, min(k, width)), -1, dtype=np.int64)
    for step in range(picks.shape[1]):
        with_candidate = mix_sum + dist
        totals = with_candidate.sum(axis=2, keepdims=True)
        q = np.divide(with_candidate, totals, out=np.zeros_like(with_candidate), where=totals > 0)
        q_smooth = (1.0 - alpha) * q + alpha * p
        # terms with p == 0 contribute 0 to KL(p || q~); q~ > 0 wherever p > 0
        kl = np.sum(np.where(p > 0, p * (p_log - np.log(np.where(p > 0, q_smooth, 1.0))), 0.0), axis=2)
        objective = (1.0 - weight) * rel - weight * kl
        objective[~available] = -np.inf
        best = objective.argmax(axis=1)
        has_pick = available[groups, best]
        picks[has_pick, step] = best[has_pick]
        available[groups[has_pick], best[has_pick]] = False
        mix_sum[has_pick, 0] += dist[groups[has_pick], best[has_pick]]
    return picks


# --- exploration ---------------------------------------------------------------------------


def exploration_slots(
    segment: str | None, shares: Mapping[str, float], k: int, default_share: float = 0.2
) -> int:
    """Number of the ``k`` slots a user of ``segment`` gives to exploration.

    ``round(share * k)`` with halves rounded up (so a 0.25 share of 10 slots is 3, not
    Python's banker's 2), clamped to [0, k]; segments missing from ``shares`` (or None)
    use ``default_share``.
    """
    _check_k(k)
    share = shares.get(segment, default_share) if segment is not None else default_share
    share = float(share)
    if not 0.0 <= share <= 1.0 or math.isnan(share):
        raise ValueError(
            f"exploration_slots: the share for segment {segment!r} must be in [0, 1], found {share}"
        )
    return int(min(max(math.floor(share * k + 0.5), 0), k))


def exploration_positions(length: int, n_slots: int, placement: Placement = "spread") -> np.ndarray:
    """0-based positions of ``n_slots`` exploration slots in a list of ``length``.

    ``spread`` (the default) cuts the list into ``n_slots`` equal blocks and makes the last
    slot of each block a probe. Every prefix of the list then carries about its share of
    probes, so a list built once at the largest K and cut at K=5, 10 or 20 explores at the
    same rate at every K; inside a block the probe takes the cheapest slot (the smallest
    rank discount), and the first slot stays the best exploit item. ``tail`` puts all probes
    last: the cheapest in NDCG at the full length, but a shorter cut of the list may show
    no probe at all.
    """
    if n_slots < 0 or length < 0 or n_slots > length:
        raise ValueError(
            f"exploration_positions: expected 0 <= n_slots <= length, found n_slots={n_slots}, "
            f"length={length}"
        )
    if placement == "tail":
        return np.arange(length - n_slots, length, dtype=np.int64)
    if placement == "spread":
        # ceil((j + 1) * length / n_slots) - 1, in integers
        return np.array(
            [-(-(j + 1) * length // n_slots) - 1 for j in range(n_slots)], dtype=np.int64
        )
    raise ValueError(f"exploration_positions: placement must be 'spread' or 'tail', found {placement!r}")


def explore(
    mean: np.ndarray,
    std: np.ndarray,
    outside_top_interests: np.ndarray,
    k: int,
    n_slots: int,
    rule: ExploreRule = "ucb",
    beta: float = 1.0,
    rng: np.random.Generator | None = None,
    exploit_scores: np.ndarray | None = None,
    placement: Placement = "spread",
    interests: np.ndarray | None = None,
    rank_penalty: np.ndarray | None = None,
    popularity: np.ndarray | None = None,
    novelty_weight: float = 0.0,
    temperature: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """One user's list with ``n_slots`` of its ``k`` slots given to exploration.

    The exploit slots keep the order of ``exploit_scores`` (default ``mean``). The
    exploration slots go to candidates outside the user's top interests that the exploit
    slots did not already take, best first by the upper confidence bound
    ``mean + beta * std`` (``rule='ucb'``) or by one Thompson draw from N(mean, std)
    (``rule='thompson'``, needs ``rng``); they are placed as :func:`exploration_positions`
    says. Fallbacks: with fewer than ``k`` candidates the list is shorter; with fewer
    eligible candidates than ``n_slots`` the missing slots go back to the exploit order.
    With ``interests`` (an id per candidate: the interest it would probe) the probes go
    first to the best candidate of each distinct interest, then to the next best of any,
    so a list's probes test several new interests rather than one several times.
    ``rank_penalty`` (per candidate) is added to each eligible candidate's place in the
    value order (0 = best) before the probes are chosen; :func:`explore_batch` uses it to
    push down items other users already probe.

    Long tail: with ``novelty_weight`` w > 0 (needs ``popularity``, per candidate the share
    of users who know the item, > 0) the value is ``log(ucb) - w * log(popularity)``, i.e.
    the bound divided by popularity**w: w = 1 ranks by lift over the average user, so an
    item only this user is likely to like beats one everybody likes.
    Sampling: with ``temperature`` T > 0 (needs ``rng``) each probe is drawn, without
    replacement, from the remaining eligible candidates with probability proportional to
    ``exp(-place / T)``, ``place`` its 0-based place in the probe order above; T = 0 takes
    the order as it is. :func:`explore_with_propensity` also returns each probe's
    probability.
    Returns (candidate positions, is_exploration flags), both of the list's length.
    """
    order, flags, _ = explore_with_propensity(
        mean, std, outside_top_interests, k, n_slots, rule=rule, beta=beta, rng=rng,
        exploit_scores=exploit_scores, placement=placement, interests=interests, rank_penalty=rank_penalty,
        popularity=popularity, novelty_weight=novelty_weight, temperature=temperature,
    )
    return order, flags


def explore_with_propensity(
    mean: np.ndarray,
    std: np.ndarray,
    outside_top_interests: np.ndarray,
    k: int,
    n_slots: int,
    rule: ExploreRule = "ucb",
    beta: float = 1.0,
    rng: np.random.Generator | None = None,
    exploit_scores: np.ndarray | None = None,
    placement: Placement = "spread",
    interests: np.ndarray | None = None,
    rank_penalty: np.ndarray | None = None,
    popularity: np.ndarray | None = None,
    novelty_weight: float = 0.0,
    temperature: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`explore`, plus per slot the probability with which the policy put that item
    there: for a probe, the probability of drawing it given the probes drawn before it
    (1.0 when ``temperature`` is 0, the policy then being deterministic); for an exploit
    slot 1.0 (the exploit slots follow from the scores alone). Thompson draws have no
    closed-form probability: their probes carry NaN."""
    mean = _as_vector("mean", mean)
    n = mean.size
    std = _as_vector("std", std, size=n)
    outside = _as_vector("outside_top_interests", outside_top_interests, size=n).astype(bool)
    exploit = mean if exploit_scores is None else _as_vector("exploit_scores", exploit_scores, size=n)
    _check_k(k)
    if n_slots < 0:
        raise ValueError(f"explore: n_slots must be >= 0, found {n_slots}")
    if rule not in ("ucb", "thompson"):
        raise ValueError(f"explore: rule must be 'ucb' or 'thompson', found {rule!r}")
    if (std < 0).any():
        raise ValueError("explore: std must be >= 0, found a negative spread")
    if rule == "thompson" and rng is None:
        raise ValueError("explore: rule='thompson' needs a seeded numpy Generator as rng, found None")
    if novelty_weight < 0 or math.isnan(novelty_weight):
        raise ValueError(f"explore: novelty_weight must be >= 0, found {novelty_weight}")
    if novelty_weight > 0 and popularity is None:
        raise ValueError("explore: novelty_weight > 0 needs popularity (per candidate), found None")
    if temperature < 0 or math.isnan(temperature):
        raise ValueError(f"explore: temperature must be >= 0, found {temperature}")
    if temperature > 0 and rng is None:
        raise ValueError("explore: temperature > 0 needs a seeded numpy Generator as rng, found None")

    length = min(k, n)
    n_slots = min(n_slots, length)
    exploit_order = np.argsort(-exploit, kind="stable")
    exploit_taken = exploit_order[: length - n_slots]
    eligible = outside.copy()
    eligible[exploit_taken] = False
    candidates = np.flatnonzero(eligible)
    if rule == "ucb":
        value = mean[candidates] + beta * std[candidates]
    else:
        value = rng.normal(mean[candidates], std[candidates])
    if novelty_weight > 0:
        share = _as_vector("popularity", popularity, size=n)[candidates].astype(np.float64)
        if (share <= 0).any():
            raise ValueError("explore: popularity must be > 0 for every candidate, found a share <= 0")
        value = np.log(np.maximum(value, 1e-300)) - novelty_weight * np.log(share)
    by_value = candidates[np.argsort(-value, kind="stable")]
    if rank_penalty is not None:
        penalty = _as_vector("rank_penalty", rank_penalty, size=n)[by_value]
        by_value = by_value[np.argsort(np.arange(by_value.size) + penalty, kind="stable")]
    if interests is not None:
        probed = _as_vector("interests", interests, size=n)[by_value]
        _, first_of_each = np.unique(probed, return_index=True)
        firsts = np.zeros(by_value.size, dtype=bool)
        firsts[first_of_each] = True
        by_value = np.concatenate([by_value[firsts], by_value[~firsts]])
    if temperature > 0:
        probes, chance = _draw_in_order(by_value, n_slots, temperature, rng)
    else:
        probes = by_value[:n_slots]
        chance = np.full(probes.size, np.nan if rule == "thompson" else 1.0)

    exploit_fill = exploit_order[~np.isin(exploit_order, probes)][: length - probes.size]
    order = np.empty(length, dtype=np.int64)
    flags = np.zeros(length, dtype=bool)
    positions = exploration_positions(length, probes.size, placement)
    flags[positions] = True
    order[positions] = probes
    order[~flags] = exploit_fill
    propensity = np.ones(length)
    propensity[positions] = chance
    return order, flags, propensity


def _draw_in_order(order: np.ndarray, n: int, temperature: float, rng: np.random.Generator):
    """``n`` draws without replacement from ``order``, place p weighted ``exp(-p / T)``;
    returns the drawn entries and each one's probability at its draw."""
    weights = np.exp(-np.arange(order.size) / temperature)
    left = np.ones(order.size, dtype=bool)
    picked, chance = [], []
    for _ in range(min(n, order.size)):
        w = np.where(left, weights, 0.0)
        p = w / w.sum()
        j = int(rng.choice(order.size, p=p))
        picked.append(order[j])
        chance.append(float(p[j]))
        left[j] = False
    return np.asarray(picked, dtype=np.int64), np.asarray(chance, dtype=np.float64)


def explore_batch(
    offsets: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    outside_top_interests: np.ndarray,
    k: int,
    n_slots: np.ndarray | int,
    rule: ExploreRule = "ucb",
    beta: float = 1.0,
    seed: int = 0,
    group_keys: np.ndarray | None = None,
    exploit_scores: np.ndarray | None = None,
    placement: Placement = "spread",
    interests: np.ndarray | None = None,
    item_keys: np.ndarray | None = None,
    repeat_penalty: float = 0.0,
    popularity: np.ndarray | None = None,
    novelty_weight: float = 0.0,
    temperature: float = 0.0,
) -> RankedRows:
    """:func:`explore` for every group; ``n_slots`` is one count per group (or one for all).

    Each group draws from its own generator seeded by ``(seed, *group_keys[g])`` (default
    key: the group number), so a user's Thompson draws do not change when other users are
    added to or dropped from the batch.

    With ``repeat_penalty > 0`` (needs ``item_keys``, the item of each row) an item that
    earlier groups already probe ``r`` times moves ``repeat_penalty * r`` places down a
    group's probe order. Without it every user probes the same few popular items of an
    interest and exploration adds almost no coverage; the price is that a list then
    depends on the groups before it (still the same list for the same batch).
    """
    offsets = _check_offsets(offsets, len(mean))
    n_groups = offsets.size - 1
    mean = _as_vector("mean", mean)
    std = _as_vector("std", std, size=mean.size)
    outside = _as_vector("outside_top_interests", outside_top_interests, size=mean.size).astype(bool)
    exploit = None if exploit_scores is None else _as_vector("exploit_scores", exploit_scores, size=mean.size)
    slots = np.broadcast_to(np.asarray(n_slots, dtype=np.int64), (n_groups,))
    keys = _group_seed_keys(group_keys, n_groups)
    if repeat_penalty < 0:
        raise ValueError(f"explore_batch: repeat_penalty must be >= 0, found {repeat_penalty}")
    if repeat_penalty > 0 and item_keys is None:
        raise ValueError("explore_batch: repeat_penalty needs item_keys (the item of each row), found None")
    items = None if item_keys is None else _as_vector("item_keys", item_keys, size=mean.size)
    times_probed: dict = {}

    share = None if popularity is None else _as_vector("popularity", popularity, size=mean.size)
    rows, ranks, groups, flags, chances = [], [], [], [], []
    for g in range(n_groups):
        start, stop = int(offsets[g]), int(offsets[g + 1])
        rng = np.random.default_rng([seed, *keys[g]]) if rule == "thompson" or temperature > 0 else None
        penalty = None
        if repeat_penalty > 0:
            penalty = repeat_penalty * np.array(
                [times_probed.get(i, 0) for i in items[start:stop].tolist()], dtype=np.float64
            )
        order, is_probe, chance = explore_with_propensity(
            mean[start:stop],
            std[start:stop],
            outside[start:stop],
            k,
            int(slots[g]),
            rule=rule,
            beta=beta,
            rng=rng,
            exploit_scores=None if exploit is None else exploit[start:stop],
            placement=placement,
            interests=None if interests is None else interests[start:stop],
            rank_penalty=penalty,
            popularity=None if share is None else share[start:stop],
            novelty_weight=novelty_weight,
            temperature=temperature,
        )
        if repeat_penalty > 0:
            for i in items[start:stop][order[is_probe]].tolist():
                times_probed[i] = times_probed.get(i, 0) + 1
        rows.append(order + start)
        ranks.append(np.arange(1, order.size + 1))
        groups.append(np.full(order.size, g))
        flags.append(is_probe)
        chances.append(chance)
    ranked = _ranked_rows(rows, groups, ranks, flags)
    propensity = np.concatenate(chances).astype(np.float64) if chances else np.zeros(0)
    return RankedRows(ranked.rows, ranked.group, ranked.rank, ranked.is_exploration, propensity)


def exploration_reason(interest: str, mean: float, spread: float) -> str:
    """The ``reason`` of an exploration slot: the interest it probes, its mean and spread.

    Two significant digits, because next-item probabilities are often far below 0.01.
    """
    return f"explore {interest} (mean {mean:.2g}, spread {spread:.2g})"


# --- reasons for exploit slots ---------------------------------------------------------------


def most_similar_rows(
    candidate_offsets: np.ndarray,
    candidate_vectors: np.ndarray,
    reference_offsets: np.ndarray,
    reference_vectors: np.ndarray,
) -> np.ndarray:
    """For each candidate row, the reference row of its group with the highest cosine.

    Typically the references are the user's history items, so the answer names the
    history item a recommendation "is like". Groups must line up (same count, same order);
    candidates of a group with no references get -1.
    """
    cand_offsets = _check_offsets(candidate_offsets, len(candidate_vectors))
    ref_offsets = _check_offsets(reference_offsets, len(reference_vectors))
    if cand_offsets.size != ref_offsets.size:
        raise ValueError(
            f"most_similar_rows: expected the same groups for candidates and references, found "
            f"{cand_offsets.size - 1} candidate groups and {ref_offsets.size - 1} reference groups"
        )
    cand = _unit_rows(np.asarray(candidate_vectors, dtype=np.float64))
    ref = _unit_rows(np.asarray(reference_vectors, dtype=np.float64))
    if cand.shape[1] != ref.shape[1]:
        raise ValueError(
            f"most_similar_rows: candidate vectors have {cand.shape[1]} dimensions but reference "
            f"vectors have {ref.shape[1]}"
        )
    cand_rows = np.arange(cand.shape[0])
    ref_rows = np.arange(ref.shape[0])
    return _nearest_rows(cand_offsets, cand_rows, cand, ref_offsets, ref_rows, ref)


def _nearest_rows(cand_offsets, cand_rows, cand_unit, ref_offsets, ref_rows, ref_unit) -> np.ndarray:
    """Per candidate row (``cand_unit[cand_rows[j]]``), the reference row of its group with
    the highest dot product (first on ties), or -1. Vectors are gathered group by group, so
    no (rows x d) copy of a long table is made, and the small products run on one torch
    thread: numpy's BLAS would use two, which stall whenever another process holds a core."""
    import torch

    from .score import torch_threads

    cand_t, ref_t = torch.from_numpy(cand_unit), torch.from_numpy(ref_unit)
    out = np.full(cand_rows.size, -1, dtype=np.int64)
    with torch_threads(1), torch.no_grad():
        for g in range(cand_offsets.size - 1):
            c0, c1 = int(cand_offsets[g]), int(cand_offsets[g + 1])
            r0, r1 = int(ref_offsets[g]), int(ref_offsets[g + 1])
            if c1 > c0 and r1 > r0:
                c = cand_t[torch.from_numpy(cand_rows[c0:c1])]
                r = ref_t[torch.from_numpy(ref_rows[r0:r1])]
                out[c0:c1] = r0 + (c @ r.T).numpy().argmax(axis=1)
    return out


# --- internals -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Padded:
    """A chunk of groups as a (groups x widest group) grid of row numbers."""

    rows: np.ndarray  # row number per cell; 0 in padding cells (masked by valid)
    valid: np.ndarray
    group_index: np.ndarray  # the chunk's groups, as numbers into the whole batch
    starts: np.ndarray


def _chunked(offsets: np.ndarray, k: int, pick) -> RankedRows:
    """Runs ``pick`` over padded chunks of groups and gathers the picks as flat rows."""
    n_groups = offsets.size - 1
    rows, groups, ranks = [], [], []
    for first in range(0, n_groups, _GROUPS_PER_CHUNK):
        index = np.arange(first, min(first + _GROUPS_PER_CHUNK, n_groups))
        starts = offsets[index]
        sizes = offsets[index + 1] - starts
        width = int(sizes.max()) if index.size else 0
        if width == 0 or k == 0:
            continue
        column = np.arange(width)
        valid = column[None, :] < sizes[:, None]
        cells = np.where(valid, starts[:, None] + column[None, :], 0)
        picks = pick(_Padded(cells, valid, index, starts))
        picked = picks >= 0
        g_local, step = np.nonzero(picked)
        rows.append(starts[g_local] + picks[g_local, step])
        groups.append(index[g_local])
        ranks.append(step + 1)
    return _ranked_rows(rows, groups, ranks, None)


def _ranked_rows(rows, groups, ranks, flags) -> RankedRows:
    if not rows:
        empty = np.zeros(0, dtype=np.int64)
        return RankedRows(empty, empty.copy(), empty.copy(), np.zeros(0, dtype=bool))
    flat_rows = np.concatenate(rows).astype(np.int64)
    return RankedRows(
        rows=flat_rows,
        group=np.concatenate(groups).astype(np.int64),
        rank=np.concatenate(ranks).astype(np.int64),
        is_exploration=(
            np.concatenate(flags).astype(bool) if flags is not None else np.zeros(flat_rows.size, bool)
        ),
    )


def score_order_batch(offsets: np.ndarray, scores: np.ndarray, k: int) -> RankedRows:
    """Every group's first ``k`` rows by descending score, ties by row order: the exploit lists."""
    rows, groups, ranks = [], [], []
    for g in range(offsets.size - 1):
        start, stop = int(offsets[g]), int(offsets[g + 1])
        order = np.argsort(-scores[start:stop], kind="stable")[:k]
        rows.append(order + start)
        groups.append(np.full(order.size, g))
        ranks.append(np.arange(1, order.size + 1))
    return _ranked_rows(rows, groups, ranks, None)


def _padded_minmax(padded: _Padded, scores: np.ndarray) -> np.ndarray:
    values = np.where(padded.valid, scores[padded.rows].astype(np.float64), 0.0)
    low = np.where(padded.valid, values, np.inf).min(axis=1, keepdims=True)
    high = np.where(padded.valid, values, -np.inf).max(axis=1, keepdims=True)
    spread = high - low
    rel = np.divide(values - low, spread, out=np.ones_like(values), where=spread > 0)
    return np.where(padded.valid, rel, 0.0)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    # a zero vector is similar to nothing rather than NaN-similar to everything
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def _group_seed_keys(group_keys: np.ndarray | None, n_groups: int) -> list[tuple[int, ...]]:
    if group_keys is None:
        return [(g,) for g in range(n_groups)]
    keys = np.asarray(group_keys)
    if keys.ndim == 1:
        keys = keys[:, None]
    if keys.shape[0] != n_groups:
        raise ValueError(
            f"explore_batch: expected one group key per group ({n_groups}), found {keys.shape[0]}"
        )
    if not np.issubdtype(keys.dtype, np.integer) or (keys < 0).any():
        raise ValueError("explore_batch: group_keys must be non-negative integers (they seed the draws)")
    return [tuple(int(v) for v in row) for row in keys]


def _as_vector(name: str, values, size: int | None = None) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d array, found shape {array.shape}")
    if size is not None and array.size != size:
        raise ValueError(f"{name}: expected {size} values (one per candidate), found {array.size}")
    if array.dtype != bool and array.size and not np.isfinite(array).all():
        raise ValueError(f"{name}: expected finite numbers, found NaN or infinity")
    return array


def _as_matrix(name: str, values, rows: int) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] != rows:
        raise ValueError(f"{name}: expected a 2-d array with {rows} rows, found shape {array.shape}")
    if array.size and not np.isfinite(array).all():
        raise ValueError(f"{name}: expected finite numbers, found NaN or infinity")
    return array


def _check_offsets(offsets, n_rows: int) -> np.ndarray:
    offsets = np.asarray(offsets, dtype=np.int64)
    if (
        offsets.ndim != 1
        or offsets.size == 0
        or offsets[0] != 0
        or offsets[-1] != n_rows
        or (np.diff(offsets) < 0).any()
    ):
        raise ValueError(
            f"offsets: expected non-decreasing group boundaries from 0 to {n_rows} (the row count), "
            f"found {offsets[:5].tolist()}{'...' if offsets.size > 5 else ''} ending at "
            f"{offsets[-1] if offsets.size else 'nothing'}"
        )
    return offsets


def _check_k(k: int) -> None:
    if not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"k: expected a non-negative integer list length, found {k!r}")


def _check_lambda(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: expected a weight in [0, 1], found {value}")


# --- frames: the re-rankers over the warehouse's long tables ---------------------------------
#
# The Python models pass their refs in as polars frames and get list rows back; everything
# between (sorting, group offsets, item lookups, reasons) lives here so that each model
# stays a few lines and the tradeoff table re-uses exactly the code of the served lists.

LIST_SCHEMA: dict[str, pl.DataType] = {
    "purpose": pl.Utf8,
    "strategy": pl.Utf8,
    "user_id": pl.Int64,
    "rank": pl.Int32,
    "item_id": pl.Int64,
    "score": pl.Float64,
    "is_exploration": pl.Boolean,
    "reason": pl.Utf8,
}


# lm_explore_lists: the list columns plus the genre each exploration slot probes and the
# probability with which the policy chose the slot's item (1.0 on exploit slots)
EXPLORE_LIST_SCHEMA: dict[str, pl.DataType] = {
    **{name: dtype for name, dtype in LIST_SCHEMA.items() if name != "reason"},
    "probed_interest": pl.Utf8,
    "propensity": pl.Float64,
    "reason": pl.Utf8,
}


@dataclass(frozen=True)
class RerankSettings:
    """The re-rankers' settings, from the project's ``rerank`` var (unknown keys are an error).

    ``explore_shares`` maps an RFM segment to the share of a list's slots that explores;
    segments not listed (and users without a segment) get ``explore_default_share``.
    """

    mmr_lambda: float = 0.7
    calibration_lambda: float = 0.5
    explore_shares: Mapping[str, float] = field(
        default_factory=lambda: {
            "New": 0.3,
            "Promising": 0.3,
            "Potential loyalists": 0.2,
            "Need attention": 0.2,
            "Hibernating": 0.2,
            "Lost": 0.2,
            "Loyal": 0.1,
            "Champions": 0.1,
            "At risk": 0.1,
            "Cannot lose them": 0.1,
        }
    )
    explore_default_share: float = 0.2
    explore_rule: ExploreRule = "ucb"
    explore_beta: float = 1.0
    explore_placement: Placement = "spread"
    explore_distinct_interests: bool = True
    explore_repeat_penalty: float = 0.0
    explore_novelty_weight: float = 0.0
    explore_temperature: float = 0.0
    explore_candidates: int = 100
    tradeoff_k: int = 10
    tradeoff_mmr_lambdas: tuple[float, ...] = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.3)
    tradeoff_calibration_lambdas: tuple[float, ...] = (0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 0.95)
    tradeoff_explore_shares: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)

    def explore_options(self) -> dict:
        """The keyword arguments of :func:`explore_lists` these settings fix (the served lists
        and eval.tradeoff_lists pass the same ones)."""
        return {
            "rule": self.explore_rule, "beta": self.explore_beta, "placement": self.explore_placement,
            "distinct_interests": self.explore_distinct_interests, "repeat_penalty": self.explore_repeat_penalty,
            "novelty_weight": self.explore_novelty_weight, "temperature": self.explore_temperature,
        }

    @classmethod
    def from_vars(cls, values: Mapping | None) -> RerankSettings:
        values = settings_values(cls, values, "rerank",
                                 ("tradeoff_mmr_lambdas", "tradeoff_calibration_lambdas", "tradeoff_explore_shares"))
        if "explore_shares" in values:
            values["explore_shares"] = {str(s): float(v) for s, v in dict(values["explore_shares"]).items()}
        settings = cls(**values)
        _check_lambda("rerank.mmr_lambda", settings.mmr_lambda)
        _check_lambda("rerank.calibration_lambda", settings.calibration_lambda)
        if settings.explore_rule not in ("ucb", "thompson"):
            raise ValueError(f"rerank.explore_rule: expected 'ucb' or 'thompson', found {settings.explore_rule!r}")
        for key in ("explore_repeat_penalty", "explore_novelty_weight", "explore_temperature"):
            if not getattr(settings, key) >= 0:
                raise ValueError(f"rerank.{key}: expected a number >= 0, found {getattr(settings, key)!r}")
        if settings.explore_placement not in ("spread", "tail"):
            raise ValueError(
                f"rerank.explore_placement: expected 'spread' or 'tail', found {settings.explore_placement!r}"
            )
        return settings


@dataclass(frozen=True)
class Candidates:
    """The LM's candidates sorted by (purpose, user_id, rank), with group offsets.

    ``frame`` has at least purpose, user_id, rank, item_id, score; a group is one
    (purpose, user) pair and ``groups`` lists them in order.
    """

    frame: pl.DataFrame
    offsets: np.ndarray
    groups: pl.DataFrame

    @classmethod
    def from_frame(cls, candidates: pl.DataFrame, histories: pl.DataFrame | None = None,
                   max_rank: int | None = None) -> Candidates:
        """Sorts the candidates; drops rows without an item or a finite score (the LM pads
        short lists with them), repeats of an item and, given ``histories`` (purpose, user_id,
        item_id), items the user already has, so no list can show them. ``max_rank`` keeps
        only the LM's first ``max_rank`` candidates of each user (the re-rankers other than
        exploration read var lm.candidates of a pool that exploration makes larger)."""
        required = {"purpose", "user_id", "rank", "item_id", "score"}
        missing = sorted(required - set(candidates.columns))
        if missing:
            raise ValueError(
                f"Candidates: expected columns {sorted(required)}, found {candidates.columns} (missing {missing})"
            )
        if max_rank is not None:
            candidates = candidates.filter(pl.col("rank") <= max_rank)
        frame = candidates.filter(
            pl.col("item_id").is_not_null() & pl.col("score").cast(pl.Float64).is_finite()
        ).sort("purpose", "user_id", "rank", "item_id").unique(
            ["purpose", "user_id", "item_id"], keep="first", maintain_order=True
        )
        if histories is not None:
            seen = histories.select("purpose", "user_id", "item_id").unique()
            frame = frame.join(seen, on=["purpose", "user_id", "item_id"], how="anti", maintain_order="left")
        frame = frame.with_columns(pl.col("user_id").cast(pl.Int64), pl.col("item_id").cast(pl.Int64))
        offsets = group_offsets(frame["purpose"].to_numpy(), frame["user_id"].to_numpy())
        groups = frame.select("purpose", "user_id").gather(offsets[:-1])
        return cls(frame, offsets, groups)

    def item_ids(self) -> np.ndarray:
        return self.frame["item_id"].to_numpy()


def item_lookup(item_ids: np.ndarray, table_ids: np.ndarray, table_values: np.ndarray) -> np.ndarray:
    """Rows of ``table_values`` for ``item_ids`` (``table_ids`` their keys); zeros for unknown ids."""
    table_ids = np.asarray(table_ids, dtype=np.int64)
    values = np.asarray(table_values)
    if values.shape[0] != table_ids.size:
        raise ValueError(
            f"item_lookup: expected one value row per table id ({table_ids.size}), found {values.shape[0]}"
        )
    if table_ids.size == 0:
        return np.zeros((np.size(item_ids), *values.shape[1:]), dtype=values.dtype)
    order = np.argsort(table_ids, kind="stable")
    sorted_ids = table_ids[order]
    ids = np.asarray(item_ids, dtype=np.int64)
    pos = np.minimum(np.searchsorted(sorted_ids, ids), sorted_ids.size - 1)
    found = sorted_ids[pos] == ids
    out = values[order[pos]]  # one gather; the rows of unknown ids are zeroed after
    out[~found] = 0
    return out


def embedding_matrix(item_ids: np.ndarray, embeddings: pl.DataFrame) -> np.ndarray:
    """Item vectors from ``ml.item_embeddings`` (item_id, embedding) for ``item_ids``; zeros if unknown."""
    if embeddings.height == 0:
        return np.zeros((len(item_ids), 1))
    vectors = np.asarray(embeddings["embedding"].to_list(), dtype=np.float64)
    return item_lookup(item_ids, embeddings["item_id"].to_numpy(), vectors)


def genre_matrix(item_ids: np.ndarray, items: pl.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Multi-hot genres of ``item_ids`` from ``staging.items`` (item_id, genres) and the genre names."""
    exploded = items.select("item_id", "genres").explode("genres").drop_nulls("genres")
    names = sorted(exploded["genres"].unique().to_list())
    column = {name: i for i, name in enumerate(names)}
    table_ids = items["item_id"].to_numpy()
    row_of = {int(item): row for row, item in enumerate(table_ids)}
    table = np.zeros((table_ids.size, len(names)))
    rows = [row_of[int(i)] for i in exploded["item_id"].to_list()]
    cols = [column[g] for g in exploded["genres"].to_list()]
    table[rows, cols] = 1.0
    return item_lookup(item_ids, table_ids, table), names


def purpose_histories(fit_events: pl.DataFrame) -> pl.DataFrame:
    """(purpose, user_id, item_id, position) sorted: what each purpose's lists start from."""
    return fit_events.select(
        "purpose", pl.col("user_id").cast(pl.Int64), pl.col("item_id").cast(pl.Int64), "position"
    ).sort("purpose", "user_id", "position", "item_id")


def aligned_offsets(groups: pl.DataFrame, rows: pl.DataFrame) -> tuple[pl.DataFrame, np.ndarray]:
    """``rows`` of the same (purpose, user_id) groups, reordered to follow ``groups`` (a group's
    rows keep their order in ``rows``), with offsets (empty runs for groups without rows);
    rows of other groups are dropped."""
    keyed = groups.select("purpose", "user_id").with_row_index("_group")
    # a join promises no row order: the explicit (group, row) sort is what aligns the rows
    joined = (
        rows.with_row_index("_row")
        .join(keyed, on=["purpose", "user_id"], how="inner")
        .sort("_group", "_row")
    )
    counts = np.bincount(joined["_group"].to_numpy(), minlength=groups.height)
    return joined.drop("_group", "_row"), np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def lists_frame(candidates: Candidates, ranked: RankedRows, strategy: str, reasons: Sequence | None = None) -> pl.DataFrame:
    """The list columns (``LIST_SCHEMA``) of the ``ranked`` candidate rows."""
    picked = candidates.frame[ranked.rows]
    return pl.DataFrame(
        {
            "purpose": picked["purpose"],
            "strategy": pl.Series([strategy] * ranked.rows.size, dtype=pl.Utf8),
            "user_id": picked["user_id"],
            "rank": ranked.rank,
            "item_id": picked["item_id"],
            "score": picked["score"],
            "is_exploration": ranked.is_exploration,
            "reason": pl.Series(reasons if reasons is not None else [None] * ranked.rows.size, dtype=pl.Utf8),
        },
        schema=LIST_SCHEMA,
    )


def exploit_lists(candidates: Candidates, k: int, strategy: str = "lm") -> pl.DataFrame:
    """The LM's own order, cut at ``k``: the point every re-ranker is measured against."""
    ranked = score_order_batch(candidates.offsets, candidates.frame["score"].to_numpy(), k)
    return lists_frame(candidates, ranked, strategy)


def mmr_lists(candidates: Candidates, item_vectors: np.ndarray, k: int, lam: float, strategy: str = "lm_mmr") -> pl.DataFrame:
    """:func:`mmr` lists for every (purpose, user); ``item_vectors`` aligned with the candidate rows."""
    ranked = mmr_batch(candidates.offsets, candidates.frame["score"].to_numpy(), item_vectors, k, lam)
    return lists_frame(candidates, ranked, strategy)


def history_genre_mix(groups: pl.DataFrame, histories: pl.DataFrame, items: pl.DataFrame) -> np.ndarray:
    """Each group's history genre distribution (Steck's p(g|u)): the mean over its history
    items of the item's genres normalised to sum 1; columns in ``genre_matrix`` order."""
    rows, offsets = aligned_offsets(groups, histories)
    genres, _ = genre_matrix(rows["item_id"].to_numpy(), items)
    item_dist = genre_distribution(genres)
    sums = np.add.reduceat(np.vstack([item_dist, np.zeros((1, item_dist.shape[1]))]), offsets[:-1], axis=0)
    sums[offsets[:-1] == offsets[1:]] = 0.0  # reduceat repeats a row for an empty run
    return genre_distribution(sums)


def calibrated_lists(
    candidates: Candidates,
    item_genres: np.ndarray,
    target_mixes: np.ndarray,
    k: int,
    lam: float,
    strategy: str = "lm_calibrated",
) -> pl.DataFrame:
    """:func:`calibrate` lists for every (purpose, user); ``target_mixes`` one row per group."""
    ranked = calibrate_batch(
        candidates.offsets, candidates.frame["score"].to_numpy(), item_genres, target_mixes, k, lam
    )
    return lists_frame(candidates, ranked, strategy)


def interest_flags_of(candidates: Candidates, interests: pl.DataFrame) -> tuple[np.ndarray, list[str | None]]:
    """Per candidate row: is it a new interest for its user, and the interest it would open,
    from a ``recs.lm_candidate_interests`` frame (purpose, user_id, item_id, is_new_interest,
    probed_interest), where the rule is defined once in SQL, shared with evaluation.

    A candidate without a row means that table is older than ``recs.lm_candidates``: an
    error (rebuild it), never a silent "not new".
    """
    joined = _per_candidate(candidates, interests, {"is_new_interest": pl.Boolean, "probed_interest": pl.Utf8},
                            required=["is_new_interest"], table="lm_candidate_interests", caller="interest_flags_of")
    outside = joined["is_new_interest"].to_numpy().astype(bool)
    probes = [p if new else None for p, new in zip(joined["probed_interest"].to_list(), outside.tolist())]
    return outside, probes


def list_lengths(k: int, ks: Sequence[int]) -> dict[str, int]:
    """How long each purpose's lists are: 'served' ``k`` (var k), 'holdout' ``max(ks)`` (every
    K measured gets a full list); the SQL lists use the same rule (list_length, sql/macros/lists.sql)."""
    if not list(ks):
        raise ValueError("list_lengths: expected at least one K in var ks, found none")
    lengths = {"served": k, "holdout": max(ks)}
    for purpose, (var, length) in zip(lengths, (("k", k), ("ks", max(ks)))):
        if not isinstance(length, (int, np.integer)) or isinstance(length, bool) or length < 1:
            raise ValueError(f"list length of the {purpose} lists: expected var {var} to give an integer >= 1, "
                             f"found {length!r}")
    return {purpose: int(length) for purpose, length in lengths.items()}


def cut_lists(lists: pl.DataFrame, lengths: Mapping[str, int]) -> pl.DataFrame:
    """``lists`` (purpose, rank, ...) cut to their purpose's length; purposes not in
    ``lengths`` keep every row."""
    limit = pl.col("purpose").replace_strict(
        {p: int(n) for p, n in lengths.items()}, default=None, return_dtype=pl.Int64
    )
    return lists.filter(limit.is_null() | (pl.col("rank") <= limit))


def _length_of(k: int | Mapping[str, int], purpose: str) -> int:
    if isinstance(k, Mapping):
        if purpose not in k:
            raise ValueError(f"list length: expected a length for purpose {purpose!r}, found only {sorted(k)}")
        return int(k[purpose])
    return int(k)


def slots_per_group(groups: pl.DataFrame, segments: pl.DataFrame, shares: Mapping[str, float],
                    k: int | Mapping[str, int], default_share: float) -> np.ndarray:
    """Exploration slots of each (purpose, user) group's list from the user's ``rfm_segment``
    for that purpose (``segments``: purpose, user_id, rfm_segment, e.g.
    ``features.user_rfm_by_purpose``); ``k`` is the list length, one for all or per purpose."""
    missing = sorted({"purpose", "user_id", "rfm_segment"} - set(segments.columns))
    if missing:
        raise ValueError(f"slots_per_group: expected segments with purpose, user_id, rfm_segment, found "
                         f"{segments.columns} (missing {missing})")
    segment_of = {
        (p, int(u)): s
        for p, u, s in zip(segments["purpose"].to_list(), segments["user_id"].cast(pl.Int64).to_list(),
                           segments["rfm_segment"].to_list())
    }
    return np.array(
        [exploration_slots(segment_of.get((p, int(u))), shares, _length_of(k, p), default_share)
         for p, u in zip(groups["purpose"].to_list(), groups["user_id"].to_list())],
        dtype=np.int64,
    )


def explore_lists(
    candidates: Candidates,
    mean: np.ndarray,
    std: np.ndarray,
    outside: np.ndarray,
    probes: Sequence[str | None],
    n_slots: np.ndarray | int,
    k: int | Mapping[str, int],
    rule: ExploreRule = "ucb",
    beta: float = 1.0,
    seed: int = 0,
    placement: Placement = "spread",
    distinct_interests: bool = True,
    repeat_penalty: float = 0.0,
    strategy: str = "lm_explore",
    popularity: np.ndarray | None = None,
    novelty_weight: float = 0.0,
    temperature: float = 0.0,
) -> pl.DataFrame:
    """:func:`explore` lists for every (purpose, user): exploit slots in the LM's score order,
    exploration slots by ``rule`` over ``mean``/``std`` (one per probed interest first when
    ``distinct_interests``), each with its reason and the genre it probes in
    ``probed_interest`` (NULL on exploit slots); columns ``EXPLORE_LIST_SCHEMA``. ``k`` is the
    list length, one for all or per purpose (:func:`list_lengths`). ``repeat_penalty`` (see
    :func:`explore_batch`) counts the probes of each purpose apart, users in id order.
    ``popularity`` (per candidate row, :func:`popularity_of`), ``novelty_weight`` and
    ``temperature`` are :func:`explore`'s; ``propensity`` is each slot's probability
    (:func:`explore_with_propensity`)."""
    users = candidates.groups["user_id"].to_numpy()
    purposes = candidates.groups["purpose"].to_list()
    purpose_keys = np.array([zlib.crc32(p.encode()) for p in purposes], dtype=np.int64)
    slots = np.broadcast_to(np.asarray(n_slots, dtype=np.int64), (len(purposes),))
    interest_ids = _interest_ids(probes) if distinct_interests else None
    scores = candidates.frame["score"].to_numpy()
    item_ids = candidates.item_ids()
    parts = []
    # groups are sorted by purpose, so each purpose is one run of groups and one row range
    group_runs = group_offsets(np.asarray(purposes, dtype=object)) if purposes else np.zeros(1, np.int64)
    for first, last in zip(group_runs[:-1].tolist(), group_runs[1:].tolist()):
        row0, row1 = int(candidates.offsets[first]), int(candidates.offsets[last])
        part = explore_batch(
            candidates.offsets[first : last + 1] - row0,
            mean[row0:row1],
            std[row0:row1],
            outside[row0:row1],
            _length_of(k, purposes[first]),
            slots[first:last],
            rule=rule,
            beta=beta,
            seed=seed,
            group_keys=np.stack([purpose_keys[first:last], users[first:last]], axis=1),
            exploit_scores=scores[row0:row1],
            placement=placement,
            interests=None if interest_ids is None else interest_ids[row0:row1],
            item_keys=item_ids[row0:row1],
            repeat_penalty=repeat_penalty,
            popularity=None if popularity is None else popularity[row0:row1],
            novelty_weight=novelty_weight,
            temperature=temperature,
        )
        parts.append(RankedRows(part.rows + row0, part.group + first, part.rank, part.is_exploration, part.propensity))
    ranked = _ranked_rows(
        [p.rows for p in parts], [p.group for p in parts], [p.rank for p in parts], [p.is_exploration for p in parts]
    )
    propensity = np.concatenate([p.propensity for p in parts]) if parts else np.zeros(0)
    probed = [probes[r] if flag else None for r, flag in zip(ranked.rows.tolist(), ranked.is_exploration.tolist())]
    reasons = [
        exploration_reason(p or "another interest", float(mean[r]), float(std[r])) if flag else None
        for r, flag, p in zip(ranked.rows.tolist(), ranked.is_exploration.tolist(), probed)
    ]
    lists = lists_frame(candidates, ranked, strategy, reasons)
    at = lists.get_column_index("reason")
    return lists.insert_column(at, pl.Series("propensity", propensity, dtype=pl.Float64)).insert_column(
        at, pl.Series("probed_interest", probed, dtype=pl.Utf8)
    )


def popularity_of(candidates: Candidates, item_popularity: pl.DataFrame) -> np.ndarray:
    """Per candidate row, the share of its purpose's users who know the item, from
    ``features.item_popularity`` (purpose, item_id, novelty_bits): ``2 ** -novelty_bits``, so an
    item nobody touched counts as known to one user, as novelty does. Always > 0."""
    keys = ["purpose", "item_id"]
    bits = item_popularity.select("purpose", pl.col("item_id").cast(pl.Int64), pl.col("novelty_bits").cast(pl.Float64))
    joined = candidates.frame.select(keys).join(bits.unique(keys, keep="first"), on=keys, how="left",
                                                maintain_order="left")
    missing = joined.filter(pl.col("novelty_bits").is_null())
    if missing.height:
        purpose, item = missing.row(0)[:2]
        raise ValueError(
            f"popularity_of: {missing.height} of {joined.height} candidates have no novelty_bits in item_popularity "
            f"(e.g. purpose {purpose!r}, item {item}); rebuild it after lm_candidates"
        )
    return np.exp2(-joined["novelty_bits"].to_numpy())


def _interest_ids(probes: Sequence[str | None]) -> np.ndarray:
    ids: dict[str | None, int] = {}
    return np.array([ids.setdefault(p, len(ids)) for p in probes], dtype=np.int64)


def like_reasons(lists: pl.DataFrame, histories: pl.DataFrame, embeddings: pl.DataFrame, items: pl.DataFrame) -> pl.DataFrame:
    """Fills the empty ``reason`` of list rows with "like <title>": the user's history item
    (of the list's purpose) whose embedding is closest to the recommended item's."""
    lists = lists.with_row_index("_order")
    todo = lists.filter(pl.col("reason").is_null()).sort("purpose", "user_id", "rank")
    if todo.height == 0:
        return lists.drop("_order")
    offsets = group_offsets(todo["purpose"].to_numpy(), todo["user_id"].to_numpy())
    groups = todo.select("purpose", "user_id").gather(offsets[:-1])
    history, history_offsets = aligned_offsets(groups, histories)
    history_items = history["item_id"].to_numpy()
    # unit vectors per embedded item (row 0: unknown items, zero, similar to nothing)
    if embeddings.height:
        table_ids = embeddings["item_id"].cast(pl.Int64).to_numpy()
        unit = np.vstack([np.zeros((1, len(embeddings["embedding"][0]))),
                          _unit_rows(np.asarray(embeddings["embedding"].to_list(), dtype=np.float64))])
    else:
        table_ids, unit = np.zeros(0, dtype=np.int64), np.zeros((1, 1))
    row_of = lambda ids: item_lookup(ids, table_ids, np.arange(1, table_ids.size + 1))  # noqa: E731
    nearest = _nearest_rows(
        offsets, row_of(todo["item_id"].to_numpy()), unit, history_offsets, row_of(history_items), unit
    )
    titles = dict(zip(items["item_id"].cast(pl.Int64).to_list(), items["title"].to_list()))
    filled = [
        f"like {titles.get(int(history_items[n])) or f'item {int(history_items[n])}'}" if n >= 0 else "popular now"
        for n in nearest.tolist()
    ]
    done = todo.select("_order").with_columns(pl.Series("_filled", filled, dtype=pl.Utf8))
    return (
        lists.join(done, on="_order", how="left")
        .sort("_order")
        .with_columns(pl.coalesce("reason", "_filled").alias("reason"))
        .drop("_order", "_filled")
    )


def candidate_uncertainty(
    lm, candidates: Candidates, histories: pl.DataFrame, passes: int, seed: int, threads: int = 1,
    progress=None,
) -> tuple[np.ndarray, np.ndarray]:
    """MC-dropout mean and spread of the LM's probability for every candidate row
    (:func:`duckrec.ml.score.score_candidates_mc`), each (purpose, user) scored from its
    purpose's history, as ``recs.lm_candidates`` was: per purpose, the n-gram half counts
    over the histories of that purpose's candidate users. Items outside the LM's catalogue get 0, 0.
    """
    from .score import score_candidates_mc

    mean = np.zeros(candidates.frame.height)
    std = np.zeros(candidates.frame.height)
    catalogue_ids = lm.catalogue.item_ids
    history, history_offsets = aligned_offsets(candidates.groups, histories)
    history_items = history["item_id"].to_numpy()
    known_history = np.isin(history_items, catalogue_ids)
    history_index = np.zeros(history_items.size, dtype=np.int64)
    history_index[known_history] = lm.catalogue.index(history_items[known_history])
    cand_items = candidates.item_ids()
    known_cand = np.isin(cand_items, catalogue_ids)
    cand_index = np.zeros(cand_items.size, dtype=np.int64)
    cand_index[known_cand] = lm.catalogue.index(cand_items[known_cand])
    purposes = candidates.groups["purpose"].to_numpy()
    for purpose in sorted(set(purposes.tolist())):
        group_ids = np.flatnonzero(purposes == purpose)
        seqs = []
        for g in group_ids:
            h = history_index[history_offsets[g] : history_offsets[g + 1]]
            seqs.append(h[h > 0])
        sizes = candidates.offsets[group_ids + 1] - candidates.offsets[group_ids]
        width = max(int(sizes.max()), 1)
        block = np.zeros((group_ids.size, width), dtype=np.int64)
        column = np.arange(width)
        valid = column[None, :] < sizes[:, None]
        rows = candidates.offsets[group_ids][:, None] + column[None, :]
        block[valid] = cand_index[rows[valid]]
        report = None if progress is None else (
            lambda task, *args, _p=purpose, **kwargs: progress(f"{_p} {task}", *args, **kwargs))
        m, s = score_candidates_mc(lm, seqs, block, passes=passes, seed=seed, threads=threads, progress=report)
        mean[rows[valid]] = m[valid]
        std[rows[valid]] = s[valid]
    return mean, std


UNCERTAINTY_SCHEMA: dict[str, pl.DataType] = {
    "purpose": pl.Utf8,
    "user_id": pl.Int64,
    "item_id": pl.Int64,
    "mc_mean": pl.Float64,
    "mc_std": pl.Float64,
}


def uncertainty_frame(candidates: Candidates, mean: np.ndarray, std: np.ndarray) -> pl.DataFrame:
    """``recs.lm_candidate_uncertainty``: one (purpose, user_id, item_id, mc_mean, mc_std) row
    per candidate row."""
    frame = candidates.frame
    return pl.DataFrame(
        {
            "purpose": frame["purpose"],
            "user_id": frame["user_id"],
            "item_id": frame["item_id"],
            "mc_mean": pl.Series(np.asarray(mean, dtype=np.float64)),
            "mc_std": pl.Series(np.asarray(std, dtype=np.float64)),
        },
        schema=UNCERTAINTY_SCHEMA,
    )


def uncertainty_of(candidates: Candidates, uncertainty: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(mc_mean, mc_std) of every candidate row from a ``recs.lm_candidate_uncertainty`` frame.

    A candidate without a row means the table is older than ``recs.lm_candidates``: that is
    an error (rebuild lm_candidate_uncertainty), never a silent zero.
    """
    joined = _per_candidate(candidates, uncertainty, {"mc_mean": pl.Float64, "mc_std": pl.Float64},
                            required=["mc_mean", "mc_std"], table="lm_candidate_uncertainty", caller="uncertainty_of")
    return joined["mc_mean"].to_numpy(), joined["mc_std"].to_numpy()


def _per_candidate(candidates: Candidates, frame: pl.DataFrame, columns: Mapping[str, pl.DataType],
                   required: Sequence[str], table: str, caller: str) -> pl.DataFrame:
    """``columns`` of ``frame`` (a per-candidate table keyed by purpose, user_id, item_id)
    for every candidate row, in candidate order. A candidate without a value in ``required``
    means ``table`` is older than ``recs.lm_candidates``: an error, never a silent default."""
    keys = ["purpose", "user_id", "item_id"]
    values = frame.select(
        "purpose", pl.col("user_id").cast(pl.Int64), pl.col("item_id").cast(pl.Int64),
        *[pl.col(name).cast(dtype) for name, dtype in columns.items()],
    ).unique(keys, keep="first")
    joined = candidates.frame.select(keys).join(values, on=keys, how="left", maintain_order="left")
    missing = joined.filter(pl.any_horizontal([pl.col(name).is_null() for name in required]))
    if missing.height:
        example = missing.row(0)
        raise ValueError(
            f"{caller}: {missing.height} of {joined.height} candidates have no {'/'.join(required)} in "
            f"{table} (e.g. purpose {example[0]!r}, user {example[1]}, item {example[2]}); "
            f"rebuild it after lm_candidates"
        )
    return joined
