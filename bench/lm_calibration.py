"""Calibration of the LM per class: is its predicted probability of an item being the next one
what happens, by rank bucket and by class (an item of the user's known interests vs a
new-interest item)? On validation: the train history predicts the valid item.

    PYTHONPATH=src python bench/lm_calibration.py --warehouse warehouse.duckdb [--neural] [--k 20]

Reads the newest checkpoint of ml.lm_checkpoints (no training). A *new interest* follows
eval's rule on the train history: the item has a genre and none of its genres is among the
user's top `--top-interests` genres (counted over the train items; ties by name); an item
without genres is never new. Prints, per rank bucket (1, 2-3, 4-7, 8-15, 16-k) and class, the
(user, item) pairs, the mean predicted probability, the observed hit rate and their ratio
(observed / predicted: 1 is calibrated, below 1 over-confident). --neural scores the
sequence model alone (lm_neural) instead of the mixture (lm).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections import Counter

sys.path.insert(0, os.path.dirname(__file__))

import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from duckrec.ml import TrainedLM, top_k  # noqa: E402
from duckrec.ml.data import training_data  # noqa: E402
from lm_split import load_split  # noqa: E402

BUCKETS = [(1, 1), (2, 3), (4, 7), (8, 15), (16, 10**9)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warehouse", required=True)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--top-interests", type=int, default=3)
    ap.add_argument("--neural", action="store_true")
    args = ap.parse_args()
    con = duckdb.connect(args.warehouse, read_only=True)
    state = con.sql("select state from ml.lm_checkpoints order by trained_at desc, checkpoint_id desc limit 1").fetchall()[0][0]
    con.close()
    lm = TrainedLM.from_bytes(state)
    if args.neural:
        lm = dataclasses.replace(lm, mixture=dataclasses.replace(lm.mixture, rnn_weight=1.0))
    events, items, tags = load_split(args.warehouse)
    data = training_data(events.filter(pl.col("split") != "test"), items, tags)
    if not np.array_equal(data.catalogue.item_ids, lm.catalogue.item_ids):
        raise SystemExit("the checkpoint's catalogue is not this warehouse's")
    genres = dict(zip(items["item_id"].to_list(), items["genres"].to_list()))
    ids = lm.catalogue.item_ids
    hist, targets = data.valid_histories, data.valid_targets
    # the n-gram half counts over every scored history, as in training's validation
    top, scores = top_k(lm, hist, args.k, bigram_sequences=hist)
    rows = []
    for h, t, row, sc in zip(hist, targets, top, scores):
        counts = Counter(g for i in h for g in (genres.get(int(ids[i - 1])) or []) if g != "(no genres listed)")
        tops = {g for g, _ in sorted(counts.items(), key=lambda x: (-x[1], x[0]))[: args.top_interests]}
        for rank, (item, p) in enumerate(zip(row, sc), 1):
            if item == 0:
                continue
            g = [x for x in (genres.get(int(ids[item - 1])) or []) if x != "(no genres listed)"]
            new = bool(g) and bool(tops) and not (set(g) & tops)
            rows.append((rank, "new interest" if new else "known interest", float(p), float(item == t)))
    frame = pl.DataFrame(rows, schema=["rank", "class", "predicted", "hit"], orient="row")
    print(f"{'lm_neural' if args.neural else 'lm'} on validation: {len(hist)} users, top {args.k}; "
          f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("| ranks | class | pairs | mean predicted | observed hit rate | observed / predicted |")
    print("|---|---|---|---|---|---|")
    for lo, hi in BUCKETS:
        if lo > args.k:
            break
        for cls in ("known interest", "new interest"):
            part = frame.filter((pl.col("rank") >= lo) & (pl.col("rank") <= hi) & (pl.col("class") == cls))
            if part.is_empty():
                continue
            pred, hit = part["predicted"].mean(), part["hit"].mean()
            print(f"| {lo}-{min(hi, args.k)} | {cls} | {part.height} | {pred:.4f} | {hit:.4f} | "
                  f"{hit / pred if pred else float('nan'):.2f} |")


if __name__ == "__main__":
    main()
