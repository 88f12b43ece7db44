"""What every re-ranker shares: ranked rows, score order, group offsets, the padded-chunk
batching of many groups at once, and the checks of the arrays they are given.

A long candidate table is laid out group after group (``offsets[g]:offsets[g + 1]`` are
group g's rows); the ``*_batch`` re-rankers return flat row numbers into it as
:class:`RankedRows`, so a caller can take its own columns along.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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


def _as_vector(name: str, values, size: int | None = None) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d array, found shape {array.shape}")
    if size is not None and array.size != size:
        raise ValueError(f"{name}: expected {size} values (one per candidate), found {array.size}")
    if array.dtype != bool and array.size and not np.isfinite(array).all():
        raise ValueError(f"{name}: expected finite numbers, found NaN or infinity")
    return array


class ItemRows:
    """A (candidate rows x columns) matrix kept as one row per distinct item plus each
    candidate row's item: per-row copies of item vectors and genre rows were most of the
    re-rankers' memory at scale (80k lists x 100 candidates x 64 floats, twice, is 8 GB).
    Indexing with row numbers gives those rows; ``np.asarray`` gives the whole matrix."""

    def __init__(self, table: np.ndarray, index: np.ndarray):
        self.table = np.asarray(table, dtype=np.float64)
        self.index = np.asarray(index, dtype=np.int64)
        if self.table.ndim != 2:
            raise ValueError(f"ItemRows: expected a 2-d item table, found shape {self.table.shape}")
        if self.index.size and (self.index.min() < 0 or self.index.max() >= self.table.shape[0]):
            raise ValueError(f"ItemRows: row items must be in [0, {self.table.shape[0]}), found "
                             f"[{self.index.min()}, {self.index.max()}]")

    @property
    def shape(self) -> tuple[int, int]:
        return (self.index.size, self.table.shape[1])

    def __len__(self) -> int:
        return self.index.size

    def __getitem__(self, rows) -> np.ndarray:
        return self.table[self.index[rows]]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self.table[self.index]
        return out if dtype is None else out.astype(dtype)

    def map_items(self, f) -> "ItemRows":
        """``f`` (a row-wise function of the matrix) applied once per item."""
        return ItemRows(f(self.table), self.index)


def _as_matrix(name: str, values, rows: int) -> np.ndarray | ItemRows:
    if isinstance(values, ItemRows):
        if values.shape[0] != rows:
            raise ValueError(f"{name}: expected {rows} rows, found {values.shape[0]}")
        if values.table.size and not np.isfinite(values.table).all():
            raise ValueError(f"{name}: expected finite numbers, found NaN or infinity")
        return values
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
