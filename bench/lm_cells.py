"""Train the item LM outside a build and print its validation curve (mixture and neural alone),
positions per second and, with --test, the holdout figures: GRU vs LSTM vs transformer.

    PYTHONPATH=src python bench/lm_cells.py --warehouse warehouse.duckdb --set cell=transformer lr=0.002
    PYTHONPATH=src python bench/lm_cells.py --ratings /work/shared/data/amazon-beauty/ratings.csv \\
        --set cell=transformer --max-minutes 15 --test

The split is duckrec's (bench/lm_split.py); the settings are TrainConfig's defaults (project.yml's
`lm` as shipped) with --set overrides (JSON values). Test figures: leave-last-out, history =
train + valid events, every item ranked, history excluded, K = 10, as eval.metrics' holdout;
read them once, after choosing on validation. Check `uptime` first: positions/s measure the load.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

from duckrec.ml import TrainConfig, rank_metrics, top_k, train_lm, user_sequences  # noqa: E402
from duckrec.ml.data import training_data  # noqa: E402
from lm_split import load_split  # noqa: E402

import polars as pl  # noqa: E402


def parse_sets(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def holdout(lm, events: pl.DataFrame, k: int = 10) -> dict[str, dict[str, float]]:
    """Test NDCG/HR@k of the mixture and of the neural half alone."""
    seen = events.filter(pl.col("split") != "test")
    index = lm.catalogue.index(seen["item_id"].to_numpy())
    users, seqs = user_sequences(seen["user_id"].to_numpy(), index, seen["position"].to_numpy())
    test = events.filter(pl.col("split") == "test").sort("user_id")
    history_of = dict(zip(users.tolist(), seqs))
    keep = [u in history_of for u in test["user_id"].to_list()]
    test = test.filter(pl.Series(keep))
    hist = [history_of[u] for u in test["user_id"].to_list()]
    targets = lm.catalogue.index(test["item_id"].to_numpy())
    out = {}
    for name, model in (("mixture", lm), ("neural", dataclasses.replace(lm, mixture=dataclasses.replace(
            lm.mixture, rnn_weight=1.0)))):
        # the n-gram half counts over every scored history, as recs.lm_candidates does
        items, _ = top_k(model, hist, k, bigram_sequences=seqs)
        out[name] = rank_metrics(items, targets, k)
    out["users"] = len(hist)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warehouse")
    ap.add_argument("--ratings")
    ap.add_argument("--set", nargs="*", default=[], help="lm settings, key=value (JSON values)")
    ap.add_argument("--max-minutes", type=float, default=None, help="lm.max_seconds / 60 (a time box)")
    ap.add_argument("--test", action="store_true", help="also print the holdout (test) figures")
    args = ap.parse_args()
    events, items, tags = load_split(args.warehouse, args.ratings)
    settings = parse_sets(args.set)
    if args.max_minutes:
        settings["max_seconds"] = args.max_minutes * 60
    config = TrainConfig.from_vars(settings)
    data = training_data(events.filter(pl.col("split") != "test"), items, tags)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load {load}; {int(data.train.sum())} train events, {len(data.train_seqs)} users, "
          f"{data.catalogue.n_items} items; settings {settings}", flush=True)
    t0 = time.perf_counter()
    result = train_lm(data.catalogue, data.train_seqs, data.valid_histories, data.valid_targets, config,
                      log=lambda line: print(line, flush=True))
    seconds = time.perf_counter() - t0
    best = next(r for r in result.history if r["epoch"] == result.best_epoch)
    train_s = sum(r["train_seconds"] for r in result.history)
    positions = sum(len(s) - 1 for s in data.train_seqs if len(s) > 1)
    print(f"RESULT cell={config.cell} settings={json.dumps(settings, sort_keys=True)} best_epoch={result.best_epoch}/"
          f"{len(result.history)} valid_ndcg={best['valid_ndcg']:.4f} valid_hr={best['valid_hit_rate']:.4f} "
          f"neural_valid_ndcg={best['rnn_valid_ndcg']:.4f} neural_valid_hr={best['rnn_valid_hit_rate']:.4f} "
          f"best_neural_any_epoch={max(r['rnn_valid_ndcg'] for r in result.history):.4f} "
          f"weight={result.lm.mixture.rnn_weight} seconds={seconds:.0f} train_seconds={train_s:.0f} "
          f"positions/s={positions * len(result.history) / train_s:,.0f} load_before={load} "
          f"load_after={' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    if args.test:
        figures = holdout(result.lm, events)
        print(f"TEST users={figures['users']} mixture ndcg@10={figures['mixture']['ndcg']:.4f} "
              f"hr@10={figures['mixture']['hit_rate']:.4f}; neural ndcg@10={figures['neural']['ndcg']:.4f} "
              f"hr@10={figures['neural']['hit_rate']:.4f}", flush=True)


if __name__ == "__main__":
    main()
