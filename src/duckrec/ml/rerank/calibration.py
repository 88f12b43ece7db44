"""Calibrated re-ranking (Steck, RecSys 2018): lists whose genre mix follows the user's history."""

from __future__ import annotations

import numpy as np

from .batching import (
    ItemRows, RankedRows, _Padded, _as_matrix, _as_vector, _check_k, _check_lambda, _check_offsets, _chunked,
    _padded_minmax, score_order_batch,
)


CALIBRATION_ALPHA = 0.01  # Steck's smoothing of q, so KL stays finite when a genre is missing


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
    item_dist = genres.map_items(genre_distribution) if isinstance(genres, ItemRows) else genre_distribution(genres)
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
    dist_total = dist.sum(axis=2)  # 1, or 0 for an item without genres
    p = target_dist[padded.group_index]
    # only the genres a user has (p > 0) enter the KL below: keep those columns, in their order
    # (a user has a few of the catalogue's genres or interest clusters; the sums are the same)
    held = p > 0
    cols = np.argsort(~held, axis=1, kind="stable")[:, : max(int(held.sum(axis=1).max(initial=0)), 1)]
    p = np.take_along_axis(p, cols, axis=1)
    dist = np.take_along_axis(dist, cols[:, None, :], axis=2)
    # a user without any genre history has nothing to calibrate to: keep the score order
    weight = np.where(p.sum(axis=1) > 0, lam, 0.0)[:, None]
    # KL(p || q~) = sum_{p>0} p log p - sum_{p>0} p log q~. The first sum is the user's, the
    # same for every candidate; in the second, q~ > 0 wherever p > 0, and where p == 0 the
    # log's argument is shifted by 1 so that 0 * log(...) stays 0.
    own = np.sum(p * np.log(np.where(p > 0, p, 1.0)), axis=1)[:, None]
    shift = (p == 0).astype(np.float64)[:, None, :]
    alpha_p = alpha * p[:, None, :]
    n_groups, width = padded.valid.shape
    mix_sum = np.zeros((n_groups, 1, dist.shape[2]))
    mix_total = np.zeros((n_groups, 1))
    available = padded.valid.copy()
    groups = np.arange(n_groups)
    picks = np.full((n_groups, min(k, width)), -1, dtype=np.int64)
    for step in range(picks.shape[1]):
        totals = mix_total + dist_total
        scale = np.divide(1.0 - alpha, totals, out=np.zeros_like(totals), where=totals > 0)
        q_smooth = (mix_sum + dist) * scale[:, :, None] + alpha_p
        kl = own - np.einsum("gwn,gn->gw", np.log(q_smooth + shift), p)
        objective = (1.0 - weight) * rel - weight * kl
        objective[~available] = -np.inf
        best = objective.argmax(axis=1)
        has_pick = available[groups, best]
        picks[has_pick, step] = best[has_pick]
        available[groups[has_pick], best[has_pick]] = False
        mix_sum[has_pick, 0] += dist[groups[has_pick], best[has_pick]]
        mix_total[has_pick, 0] += dist_total[groups[has_pick], best[has_pick]]
    return picks
