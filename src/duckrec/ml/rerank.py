"""Re-ranking of a user's language-model candidates: MMR, calibration, exploration.

Every function works on one user's top-N candidates (the LM's item scores, in the LM's
candidate order) and returns an *order*: positions into those candidates, best first.
The ``*_batch`` functions do the same for many users at once over a long table of
candidates laid out group after group (``offsets[g]:offsets[g + 1]`` are group g's rows),
and return flat row numbers into that table, so a caller can take its own columns along.

Ties always break by candidate order, so a re-ranker that is switched off (MMR with
``lam=1``, calibration with ``lam=0``, exploration with no slots) gives back exactly the
score order, stably sorted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = [
    "ExploreRule",
    "Placement",
    "RankedRows",
    "calibrate",
    "calibrate_batch",
    "exploration_positions",
    "exploration_reason",
    "exploration_slots",
    "explore",
    "explore_batch",
    "genre_distribution",
    "group_offsets",
    "minmax",
    "mmr",
    "mmr_batch",
    "most_similar_rows",
    "score_order",
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
    exploration slots (all False for MMR and calibration).
    """

    rows: np.ndarray
    group: np.ndarray
    rank: np.ndarray
    is_exploration: np.ndarray


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
        return _score_order_batch(offsets, scores, k)
    unit = _unit_rows(vectors)
    return _chunked(offsets, k, lambda padded: _mmr_padded(padded, scores, unit, k, lam))


def _mmr_padded(padded: _Padded, scores: np.ndarray, unit: np.ndarray, k: int, lam: float):
    rel = _padded_minmax(padded, scores)
    vecs = np.where(padded.valid[:, :, None], unit[padded.rows], 0.0)
    similarity = vecs @ vecs.transpose(0, 2, 1)
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
        max_sim = np.maximum(max_sim, similarity[groups, best])
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
        return _score_order_batch(offsets, scores, k)
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
) -> tuple[np.ndarray, np.ndarray]:
    """One user's list with ``n_slots`` of its ``k`` slots given to exploration.

    The exploit slots keep the order of ``exploit_scores`` (default ``mean``). The
    exploration slots go to candidates outside the user's top interests that the exploit
    slots did not already take, best first by the upper confidence bound
    ``mean + beta * std`` (``rule='ucb'``) or by one Thompson draw from N(mean, std)
    (``rule='thompson'``, needs ``rng``); they are placed as :func:`exploration_positions`
    says. Fallbacks: with fewer than ``k`` candidates the list is shorter; with fewer
    eligible candidates than ``n_slots`` the missing slots go back to the exploit order.
    Returns (candidate positions, is_exploration flags), both of the list's length.
    """
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
    probes = candidates[np.argsort(-value, kind="stable")[:n_slots]]

    exploit_fill = exploit_order[~np.isin(exploit_order, probes)][: length - probes.size]
    order = np.empty(length, dtype=np.int64)
    flags = np.zeros(length, dtype=bool)
    positions = exploration_positions(length, probes.size, placement)
    flags[positions] = True
    order[positions] = probes
    order[~flags] = exploit_fill
    return order, flags


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
) -> RankedRows:
    """:func:`explore` for every group; ``n_slots`` is one count per group (or one for all).

    Each group draws from its own generator seeded by ``(seed, *group_keys[g])`` (default
    key: the group number), so a user's Thompson draws do not change when other users are
    added to or dropped from the batch.
    """
    offsets = _check_offsets(offsets, len(mean))
    n_groups = offsets.size - 1
    mean = _as_vector("mean", mean)
    std = _as_vector("std", std, size=mean.size)
    outside = _as_vector("outside_top_interests", outside_top_interests, size=mean.size).astype(bool)
    exploit = None if exploit_scores is None else _as_vector("exploit_scores", exploit_scores, size=mean.size)
    slots = np.broadcast_to(np.asarray(n_slots, dtype=np.int64), (n_groups,))
    keys = _group_seed_keys(group_keys, n_groups)

    rows, ranks, groups, flags = [], [], [], []
    for g in range(n_groups):
        start, stop = int(offsets[g]), int(offsets[g + 1])
        rng = np.random.default_rng([seed, *keys[g]]) if rule == "thompson" else None
        order, is_probe = explore(
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
        )
        rows.append(order + start)
        ranks.append(np.arange(1, order.size + 1))
        groups.append(np.full(order.size, g))
        flags.append(is_probe)
    return _ranked_rows(rows, groups, ranks, flags)


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
    out = np.full(cand.shape[0], -1, dtype=np.int64)
    for g in range(cand_offsets.size - 1):
        c0, c1 = cand_offsets[g], cand_offsets[g + 1]
        r0, r1 = ref_offsets[g], ref_offsets[g + 1]
        if c1 > c0 and r1 > r0:
            out[c0:c1] = r0 + (cand[c0:c1] @ ref[r0:r1].T).argmax(axis=1)
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


def _score_order_batch(offsets: np.ndarray, scores: np.ndarray, k: int) -> RankedRows:
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
