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


def fit_bigram(sequences: list[np.ndarray], n_items: int, *, max_distance: int = 1,
               backward_weight: float = 0.0) -> Bigram:
    """Count (item, later item) pairs over ``sequences`` of 1-based item indices."""
    if max_distance < 1:
        raise ValueError(f"fit_bigram: expected max_distance >= 1, found {max_distance}")
    src, dst, wts = [], [], []
    for d in range(1, max_distance + 1):
        a = [s[:-d] for s in sequences if len(s) > d]
        b = [s[d:] for s in sequences if len(s) > d]
        if not a:
            break
        a_, b_ = np.concatenate(a), np.concatenate(b)
        src += [a_, b_] if backward_weight > 0 else [a_]
        dst += [b_, a_] if backward_weight > 0 else [b_]
        wts += [np.full(len(a_), 1.0 / d)] + ([np.full(len(a_), backward_weight / d)] if backward_weight > 0 else [])
    src_a = np.concatenate(src) if src else np.zeros(0, dtype=np.int64)
    dst_a = np.concatenate(dst) if dst else np.zeros(0, dtype=np.int64)
    w_a = np.concatenate(wts) if wts else np.zeros(0)
    key = src_a * (n_items + 1) + dst_a
    uniq, inverse = np.unique(key, return_inverse=True)
    counts = np.bincount(inverse, weights=w_a, minlength=len(uniq))
    rows, cols = uniq // (n_items + 1), uniq % (n_items + 1)
    offsets = np.zeros(n_items + 2, dtype=np.int64)
    np.add.at(offsets, rows + 1, 1)
    all_items = np.concatenate(sequences) if len(sequences) else np.zeros(0, dtype=np.int64)
    # add-0.1 so an item never seen still has a (tiny) probability, never exactly 0
    freq = np.bincount(all_items, minlength=n_items + 1).astype(np.float64) + 0.1
    freq[0] = 0.0
    return Bigram(
        n_items=n_items,
        row_offsets=np.cumsum(offsets),
        next_items=cols.astype(np.int64),
        counts=counts.astype(np.float32),
        unigram=(freq / freq.sum()).astype(np.float32),
    )


def next_item_probs(bigram: Bigram, histories: list[np.ndarray], smoothing: float,
                    context: int = 1, decay: float = 1.0) -> torch.Tensor:
    """[U, n_items] P(next | history): the mean, weighted ``decay ** age``, over the last
    ``context`` items i of P(j | i) = (c(i, j) + smoothing * P(j)) / (c(i) + smoothing).

    An empty history gives the unigram distribution.
    """
    if smoothing <= 0:
        raise ValueError(f"next_item_probs: expected smoothing > 0, found {smoothing}")
    uni = torch.from_numpy(bigram.unigram[1:])
    out = torch.zeros(len(histories), bigram.n_items)
    for row, hist in enumerate(histories):
        recent = np.asarray(hist[-context:])[::-1]
        if len(recent) == 0:
            out[row] = uni
            continue
        total_w = 0.0
        for age, item in enumerate(recent.tolist()):
            w = decay ** age
            lo, hi = bigram.row_offsets[item], bigram.row_offsets[item + 1]
            cnt = bigram.counts[lo:hi]
            denom = float(cnt.sum()) + smoothing
            out[row].add_(uni, alpha=w * smoothing / denom)
            if hi > lo:
                out[row].index_add_(0, torch.from_numpy(bigram.next_items[lo:hi] - 1),
                                    torch.from_numpy(cnt), alpha=w / denom)
            total_w += w
        out[row] /= total_w
    return out
