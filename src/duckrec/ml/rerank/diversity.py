"""MMR: maximal marginal relevance (Carbonell and Goldstein, 1998) over the LM's candidates."""

from __future__ import annotations

import numpy as np

from .batching import (
    ItemRows, RankedRows, _Padded, _as_matrix, _as_vector, _check_k, _check_lambda, _check_offsets, _chunked,
    _padded_minmax, _unit_rows, score_order_batch,
)


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
    unit = vectors.map_items(_unit_rows) if isinstance(vectors, ItemRows) else _unit_rows(vectors)
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
