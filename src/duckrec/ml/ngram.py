"""Item n-gram counts: the count half of the mixed LM.

Mixing an RNN with an n-gram model (Mikolov et al., 2010) helps most where the RNN is
weakest: exact, frequent item-to-item transitions that a small network smooths away.
The counts are skip-bigrams: pairs up to ``max_distance`` apart (weight 1/distance),
the reverse direction at ``backward_weight``, because in rating logs the order inside a
session is partly arbitrary (many events share a timestamp). With ``max_distance=1`` and
``backward_weight=0`` this is the plain first-order transition table.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Bigram:
    """Weighted pair counts in CSR form over 1-based item indices (row 0 is unused)."""

    n_items: int
    row_offsets: np.ndarray  # int64, n_items + 2
    next_items: np.ndarray  # int64, 1-based
    counts: np.ndarray  # float32
    unigram: np.ndarray  # float32 [n_items + 1], smoothed item frequency, [0] = 0
    row_totals: np.ndarray  # float64 [n_items + 1], each row's count sum (c(i) below)


def fit_bigram(sequences: list[np.ndarray], n_items: int, *, max_distance: int = 1,
               backward_weight: float = 0.0) -> Bigram:
    """Count (item, later item) pairs over ``sequences`` of 1-based item indices.

    Pairs are reduced one distance and direction at a time, so the peak memory is that
    of one event-sized key array, not of ``2 * max_distance`` of them.
    """
    if max_distance < 1:
        raise ValueError(f"fit_bigram: expected max_distance >= 1, found {max_distance}")
    width = n_items + 1
    # the pair keys seen so far (sorted, unique) and their weighted counts; each pass's keys
    # are merged in as they come, so the peak is the final table plus one pass's keys, not
    # all passes' keys at once (about 700 MB at 2M events). Each count is summed pass by
    # pass in the same order as one bincount over all passes would, so the sums are equal.
    uniq, counts = np.zeros(0, dtype=np.int64), np.zeros(0)
    for d in range(1, max_distance + 1):
        long_enough = [s for s in sequences if len(s) > d]
        if not long_enough:
            break
        a_ = np.concatenate([s[:-d] for s in long_enough]).astype(np.int64)
        b_ = np.concatenate([s[d:] for s in long_enough]).astype(np.int64)
        for src, dst, w in ((a_, b_, 1.0 / d), (b_, a_, backward_weight / d)):
            if w <= 0:
                continue
            keys, count = np.unique(src * width + dst, return_counts=True)
            uniq, counts = _merge_counts(uniq, counts, keys, count * w)
        del a_, b_
    rows, cols = uniq // width, uniq % width
    offsets = np.zeros(n_items + 2, dtype=np.int64)
    np.add.at(offsets, rows + 1, 1)
    all_items = np.concatenate(sequences) if len(sequences) else np.zeros(0, dtype=np.int64)
    # add-0.1 so an item never seen still has a (tiny) probability, never exactly 0
    freq = np.bincount(all_items, minlength=n_items + 1).astype(np.float64) + 0.1
    freq[0] = 0.0
    row_offsets = np.cumsum(offsets)
    counts = counts.astype(np.float32)
    # each row's total, once: scoring a block of users needs it for every history item, and
    # a cumulative sum over all pairs per block was 120 MB and most of a block's time at 2M events
    csum = np.concatenate([[0.0], np.cumsum(counts, dtype=np.float64)])
    return Bigram(
        n_items=n_items,
        row_offsets=row_offsets,
        next_items=cols.astype(np.int64),
        counts=counts,
        unigram=(freq / freq.sum()).astype(np.float32),
        row_totals=csum[row_offsets[1:]] - csum[row_offsets[:-1]],
    )


def _merge_counts(uniq: np.ndarray, counts: np.ndarray, keys: np.ndarray, values: np.ndarray):
    """``counts`` (over the sorted unique ``uniq``) plus ``values`` (over the sorted unique
    ``keys``): known keys add in place (old + new), new keys are inserted in order."""
    pos = np.searchsorted(uniq, keys)
    known = pos < uniq.size
    known[known] = uniq[pos[known]] == keys[known]
    counts[pos[known]] += values[known]
    fresh = ~known
    return np.insert(uniq, pos[fresh], keys[fresh]), np.insert(counts, pos[fresh], values[fresh])


def next_item_probs(bigram: Bigram, histories: list[np.ndarray], smoothing: float,
                    context: int = 1, decay: float = 1.0) -> torch.Tensor:
    """[U, n_items] P(next | history): the mean, weighted ``decay ** age``, over the last
    ``context`` items i of P(j | i) = (c(i, j) + smoothing * P(j)) / (c(i) + smoothing).

    An empty history gives the unigram distribution. The result is dense: callers score
    a bounded number of users at a time.
    """
    parts = ngram_parts(bigram, histories, smoothing, context, decay)
    n_users, n = len(histories), bigram.n_items
    out = np.bincount(parts.rows * n + parts.items - 1, weights=parts.weights,
                      minlength=n_users * n).astype(np.float64, copy=False).reshape(n_users, n)
    out += parts.uni_weight[:, None] * parts.unigram[None, :]
    return torch.from_numpy(out.astype(np.float32))


@dataclass(frozen=True)
class NgramParts:
    """:func:`next_item_probs` as a sparse part plus a per-user multiple of the unigram:
    P(j | history u) = sum of ``weights`` over the pairs (``rows`` = u, ``items`` = j) +
    ``uni_weight[u] * unigram[j - 1]`` (``items`` 1-based). The pairs' support (the
    successors of each history's last ``context`` items) does not depend on the smoothing
    or the decay, so scoring a few items per user needs only these pairs."""

    rows: np.ndarray
    items: np.ndarray
    weights: np.ndarray
    uni_weight: np.ndarray  # float64 [U]
    unigram: np.ndarray  # float64 [n_items]

    def at(self, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        """float32 P(items | history rows) for (row, 1-based item) pairs sorted by (row, item)
        and unique: the same sums, in the same order, as the dense :func:`next_item_probs`,
        so the same float32 values."""
        n = self.unigram.size
        keys = rows.astype(np.int64) * n + items.astype(np.int64) - 1
        pairs = self.rows * n + self.items - 1
        pos = np.minimum(np.searchsorted(keys, pairs), max(keys.size - 1, 0))
        listed = keys[pos] == pairs if keys.size else np.zeros(pairs.size, dtype=bool)
        out = np.bincount(pos[listed], weights=self.weights[listed], minlength=keys.size).astype(np.float64, copy=False)
        out += self.uni_weight[rows] * self.unigram[items - 1]
        return out.astype(np.float32)


def ngram_parts(bigram: Bigram, histories: list[np.ndarray], smoothing: float, context: int = 1,
                decay: float = 1.0) -> NgramParts:
    """The pieces of :func:`next_item_probs` (see :class:`NgramParts`)."""
    if smoothing <= 0:
        raise ValueError(f"next_item_probs: expected smoothing > 0, found {smoothing}")
    n_users = len(histories)
    rows, items, ages = recent_items(histories, context)
    w = np.power(float(decay), ages)
    total_w = np.bincount(rows, weights=w, minlength=n_users)
    lo, hi = bigram.row_offsets[items], bigram.row_offsets[items + 1]
    denom = bigram.row_totals[items] + smoothing
    share = w / total_w[rows] / denom  # the weight of row ``items`` in the user's mean
    uni = bigram.unigram[1:].astype(np.float64)
    uni_weight = np.bincount(rows, weights=share * smoothing, minlength=n_users)
    uni_weight[total_w == 0] = 1.0  # no history: the unigram alone
    # every (user, next item) count of the recent items' rows
    lengths = hi - lo
    pair = np.repeat(np.arange(len(items)), lengths)
    pos = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths) + lo[pair]
    return NgramParts(rows[pair], bigram.next_items[pos], bigram.counts[pos] * share[pair], uni_weight, uni)


def recent_items(histories: list[np.ndarray], context: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, item, age) of each history's last ``context`` items; age 0 is the newest."""
    recent = [np.asarray(h[-context:], dtype=np.int64) if context > 0 else np.zeros(0, np.int64) for h in histories]
    lengths = np.fromiter((len(r) for r in recent), dtype=np.int64, count=len(recent))
    rows = np.repeat(np.arange(len(recent)), lengths)
    items = np.concatenate(recent + [np.zeros(0, np.int64)])
    ends = np.cumsum(lengths)
    ages = ends[rows] - 1 - np.arange(len(items)) if len(items) else np.zeros(0, np.int64)
    return rows, items, ages
