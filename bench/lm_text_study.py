"""The text-aware LM against the ID-only LM, on the standard split and on the new-item split.

Reads a built warehouse (features.fit_events, staging.items, features.fit_tags), trains the LM
in this process (the build's code: duckrec.ml.train_lm) with and without the items' text
embeddings, and prints valid NDCG@10, test NDCG@10 / HR@10 over all users and over the users
whose test item is new (the newest --new-share of items by first event), beside popularity and
new_in_genre computed the same way. With --split new_items the new items' train and valid
events are hidden from training (they are cold), as split_rule new_items does.

    python bench/lm_text_study.py --warehouse warehouse.duckdb --split new_items --text on
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import yaml

from duckrec.ml import TrainConfig, train_lm
from duckrec.ml.data import training_data
from duckrec.ml.score import rank_metrics, top_k

ROOT = Path(__file__).resolve().parents[1]


def text_vectors(con) -> dict[int, np.ndarray]:
    """The build's own encodings (ml.item_text_embeddings: the holdout purpose's texts)."""
    try:
        rows = con.sql("select item_id, embedding from ml.item_text_embeddings").pl()
    except duckdb.Error as exc:
        sys.exit(f"{exc}\nexpected ml.item_text_embeddings in the warehouse: build it with text on first")
    if rows.is_empty():
        sys.exit("ml.item_text_embeddings is empty: the warehouse was built with text off")
    return dict(zip(rows["item_id"].to_list(), rows["embedding"].to_numpy()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--warehouse", required=True)
    ap.add_argument("--split", choices=["standard", "new_items"], default="standard")
    ap.add_argument("--text", choices=["on", "off"], default="on")
    ap.add_argument("--new-share", type=float, default=0.1)
    ap.add_argument("--lm", default="{}", help="lm settings as JSON (TrainConfig keys)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--save", help="write the trained model's bytes here")
    args = ap.parse_args()
    con = duckdb.connect(args.warehouse, read_only=True)
    events = con.sql("select user_id, item_id, event_time, value, position, split from features.fit_events "
                     "where purpose = 'served' order by user_id, position").pl()
    items = con.sql("select item_id, genres from staging.items").pl()
    tags = con.sql("select distinct item_id, tag from features.fit_tags where purpose = 'holdout'").pl()
    first = events.group_by("item_id").agg(pl.col("event_time").min().alias("first")).sort("first", "item_id")
    n_new = int(round(args.new_share * first.height))
    new_items = set(first["item_id"].tail(n_new).to_list())
    arrival = dict(zip(first["item_id"].to_list(), first["first"].to_list()))
    visible = events.filter(pl.col("split") != "test")
    if args.split == "new_items":
        visible = visible.filter(~pl.col("item_id").is_in(list(new_items)))
    data = training_data(visible, items, tags)
    cat = data.catalogue
    text = None
    if args.text == "on":
        vecs = text_vectors(con)
        text = np.zeros((cat.n_items + 1, 384), dtype=np.float32)
        for k, item in enumerate(cat.item_ids.tolist()):
            if item in vecs:
                text[k + 1] = vecs[item]
    # the project's lm var (project.yml), as the build trains with it, then --lm on top
    project = yaml.safe_load((ROOT / "project.yml").read_text())
    skip = {"candidates", "mc_passes", "warm_start", "warm_epochs", "warm_lr_scale", "replay_ratio",
            "full_retrain_every", "keep_checkpoints"}  # scoring and nightly settings, not training ones
    settings = {k: v for k, v in (project["vars"].get("lm") or {}).items() if k not in skip}
    settings.update({"seed": args.seed, **json.loads(args.lm)})
    config = TrainConfig.from_vars(settings)
    t0 = time.perf_counter()
    result = train_lm(cat, data.train_seqs, data.valid_histories, data.valid_targets, config,
                      log=lambda m: print(m, file=sys.stderr),
                      text=text)
    seconds = time.perf_counter() - t0
    if args.save:
        Path(args.save).write_bytes(result.lm.to_bytes())
    best = result.history[result.best_epoch - 1] if result.best_epoch else {}
    # test: every user with a test event, history = what the holdout purpose sees
    test = events.filter(pl.col("split") == "test")
    hist = visible.group_by("user_id", maintain_order=True).agg(pl.col("item_id"))
    hist_of = dict(zip(hist["user_id"].to_list(), hist["item_id"].to_list()))
    users = [u for u in test["user_id"].to_list() if u in hist_of]
    target_item = dict(zip(test["user_id"].to_list(), test["item_id"].to_list()))
    histories = [cat.index(np.array(hist_of[u])) for u in users]
    targets = cat.index(np.array([target_item[u] for u in users]))
    ranked, _ = top_k(result.lm, histories, 10)
    is_new = np.array([target_item[u] in new_items for u in users])
    out = {"split": args.split, "text": args.text, "settings": settings, "train_seconds": round(seconds, 1),
           "best_epoch": result.best_epoch, "valid_ndcg": best.get("valid_ndcg"),
           "rnn_valid_ndcg": best.get("rnn_valid_ndcg"), "mixture": result.lm.mixture.__dict__,
           "users": len(users), "new_item_users": int(is_new.sum()),
           "lm": rank_metrics(ranked, targets, 10), "lm_new": rank_metrics(ranked[is_new], targets[is_new], 10)}
    # baselines on the new-item users: popularity over visible events; new_in_genre
    pop = visible.group_by("item_id").len().sort(["len", "item_id"], descending=[True, False])
    pop_items = pop["item_id"].to_list()
    genres_of = dict(zip(items["item_id"].to_list(), items["genres"].to_list()))
    seen_items = set(visible["item_id"].to_list())
    cold = sorted((i for i in genres_of if i not in seen_items), key=lambda i: (-(arrival.get(i) or 0).timestamp()
                  if arrival.get(i) else 0, i))
    def lists(u):
        h = set(hist_of[u])
        popular = [i for i in pop_items if i not in h][:10]
        counts = {}
        for i in hist_of[u]:
            for g in genres_of.get(i) or []:
                counts[g] = counts.get(g, 0) + 1
        top = {g for g, _ in sorted(counts.items(), key=lambda x: (-x[1], x[0]))[:3]}
        pool = cold if args.split == "new_items" else sorted(
            (i for i in genres_of if i in new_items), key=lambda i: (-arrival[i].timestamp(), i))
        nig = [i for i in pool if i not in h and top & set(genres_of.get(i) or [])][:10]
        nig += [i for i in popular if i not in nig][: 10 - len(nig)]
        return popular, nig
    pop_l, nig_l = zip(*(lists(u) for u in np.array(users)[is_new].tolist()))
    tgt = np.array([target_item[u] for u in np.array(users)[is_new].tolist()])
    out["popularity_new"] = rank_metrics(np.array(pop_l), tgt, 10)
    out["new_in_genre_new"] = rank_metrics(np.array(nig_l), tgt, 10)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
