"""Item bigram (first-order transition) model, the count half of the mixed LM.

Mixing an RNN with an n-gram model (Mikolov et al., 2010) helps most where the RNN is
weakest: exact, frequent item-to-item transitions that a small network smooths away.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Bigram:
    """Transition counts in CSR form over 1-based item indices (row 0 is unused)."""

    n_items: int
    row_offsets: np.ndarray  # int64, n_items + 2
    next_items: np.ndarray  # int64, 1-based
    counts: np.ndarray  # float32
    unigram: np.ndarray  # float32 [n_items + 1], smoothed item frequency, [0] = 0


def fit_bigram(sequences: list[np.ndarray], n_items: int) -> Bigram:
    """Count (item, next item) pairs over ``sequences`` of 1-based item indices."""
    src = [s[:-1] for s in sequences if len(s) > 1]
    dst = [s[1:] for s in sequences if len(s) > 1]
    src_a = np.concatenate(src) if src else np.zeros(0, dtype=np.int64)
    dst_a = np.concatenate(dst) if dst else np.zeros(0, dtype=np.int64)
    key = src_a * (n_items + 1) + dst_a
    uniq, counts = np.unique(key, return_counts=True)
    rows, cols = uniq // (n_items + 1), uniq % (n_items + 1)
    offsets = np.zeros(n_items + 2, dtype=np.int64)
    np.add.at(offsets, rows + 1, 1)
    all_items = np.concatenate(sequences) if sequences else np.zeros(0, dtype=np.int64)
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


def next_item_probs(bigram: Bigram, last_items: np.ndarray, smoothing: float) -> torch.Tensor:
    """[U, n_items] P(next | last) = (c(last, j) + smoothing * P(j)) / (c(last) + smoothing).

    ``last_items`` of 0 (no history) give the unigram distribution.
    """
    if smoothing <= 0:
        raise ValueError(f"next_item_probs: expected smoothing > 0, found {smoothing}")
    last = np.asarray(last_items, dtype=np.int64)
    uni = torch.from_numpy(bigram.unigram[1:])
    out = (smoothing * uni).repeat(len(last), 1)
    totals = np.full(len(last), smoothing, dtype=np.float32)
    for row, item in enumerate(last):
        lo, hi = bigram.row_offsets[item], bigram.row_offsets[item + 1]
        if hi > lo:
            cols = torch.from_numpy(bigram.next_items[lo:hi] - 1)
            out[row].index_add_(0, cols, torch.from_numpy(bigram.counts[lo:hi]))
            totals[row] += bigram.counts[lo:hi].sum()
    return out / torch.from_numpy(totals).unsqueeze(1)
