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
import hashlib
import json
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from duckrec.ml import TrainConfig, train_lm
from duckrec.ml.data import training_data
from duckrec.ml.score import rank_metrics, top_k


def item_texts(con) -> pl.DataFrame:
    return con.sql("""
        with tags as (
            select item_id, tag, count(*) as n from features.fit_tags where purpose = 'holdout' group by all),
        top as (
            select item_id, string_agg(tag, ', ' order by n desc, tag) as tags
            from (select *, row_number() over (partition by item_id order by n desc, tag) as r from tags)
            where r <= 5 group by item_id)
        select i.item_id, i.title || coalesce(' (' || i.release_year || ')', '') || '. Genres: '
               || array_to_string(i.genres, ', ') || coalesce('. Tags: ' || top.tags, '') as text
        from staging.items i left join top using (item_id) order by item_id""").pl()


def encode(texts: pl.DataFrame, cache: Path) -> dict[int, np.ndarray]:
    key = hashlib.sha256("\n".join(texts["text"]).encode()).hexdigest()[:12]
    path = cache / f"text-{key}.npy"
    if not path.exists():
        try:
            from duckrec.ml.text import encode_texts  # noqa: PLC0415 - the build's encoder
        except ImportError:  # before duckrec.ml.text: the extracted model
            def encode_texts(texts):
                from sentence_transformers import SentenceTransformer  # noqa: PLC0415
                return SentenceTransformer("/tmp/minilm", device="cpu").encode(texts, batch_size=128, normalize_embeddings=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, encode_texts(texts["text"].to_list()))
    vectors = np.load(path)
    return dict(zip(texts["item_id"].to_list(), vectors))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--warehouse", required=True)
    ap.add_argument("--split", choices=["standard", "new_items"], default="standard")
    ap.add_argument("--text", choices=["on", "off"], default="on")
    ap.add_argument("--new-share", type=float, default=0.1)
    ap.add_argument("--lm", default="{}", help="lm settings as JSON (TrainConfig keys)")
    ap.add_argument("--cache", default="/tmp/duckrec-text-cache")
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
        vecs = encode(item_texts(con), Path(args.cache))
        text = np.zeros((cat.n_items + 1, 384), dtype=np.float32)
        for k, item in enumerate(cat.item_ids.tolist()):
            if item in vecs:
                text[k + 1] = vecs[item]
    settings = {"seed": 42, **json.loads(args.lm)}
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
