"""What probes for new interests can buy: the new-interest hit rate against NDCG@10, on the
VALIDATION split (never test), with the probes given where the LM says they cost least.

Issue 15 asks lm_explore for a new-interest hit rate of 1.5 x lm's with NDCG@10 at 0.95 x lm's
or more, and coverage of 1.3 x lm's. This script measures how far the first two can hold
together, whatever the coverage: every probe here is the likeliest new-interest item (the LM's
MC-dropout mean + spread, no popularity weight, no repeat penalty, no sampling), which is what
a hit needs, and the probes go to the users whose lists they cost least.

The allocation: per user and number of probes in the top 10 (0-3: 0, 2, 4 or 6 of the 20
slots a list is built with, placed as the served lists place them), the LM's own probabilities
give the expected NDCG@10 and the expected new-interest hits of the list. Each further probe
of a user buys expected hits at an expected NDCG cost; taken best ratio first (per user in
order), a budget of B probes is the Lagrangian frontier under the model. The same lists are
then measured against the valid events. Last: how the LM's probabilities compare with what
happens (per class: items of the user's interests and new-interest items), which explains the
gap between the two frontiers, and how much lm's own new-interest hits, the bar's denominator,
move under a re-ranking that leaves lm's NDCG where it is.

    .venv/bin/python bench/explore_frontier.py [warehouse.duckdb] [--candidates 600]
"""
from __future__ import annotations

import argparse

import numpy as np
import polars as pl

from duckrec.ml import rerank
from tune_explore import K, LENGTH, Pool, fmt

LEVELS = (0, 1, 2, 3)  # probes in the top K; the list of LENGTH carries twice as many
BUDGETS = (0.25, 0.5, 1.0, 1.35, 1.65, 2.0, 3.0)  # probes per user, on average
PROBE = dict(rule="ucb", beta=1.0, placement="spread", distinct_interests=True)


def expected(pool: Pool, lists: pl.DataFrame) -> pl.DataFrame:
    """Per user, under the LM's probabilities (the candidate's score): expected NDCG@K (one
    target per user) and expected new-interest hits of the list's top K."""
    rows = pool.candidates.frame.select("user_id", "item_id", "score").with_columns(
        pl.Series("is_new", pool.outside))
    top = lists.filter(pl.col("rank") <= K).select("user_id", "item_id", "rank").join(
        rows, on=["user_id", "item_id"], how="left")
    return top.group_by("user_id").agg(
        (pl.col("score") / (pl.col("rank") + 1).log(2)).sum().alias("e_ndcg"),
        pl.col("score").filter(pl.col("is_new")).sum().alias("e_new"),
    ).sort("user_id")


def allocate(e_ndcg: np.ndarray, e_new: np.ndarray, budget: int) -> np.ndarray:
    """Probes per user (a level of LEVELS): the ``budget`` further probes with the best expected
    hits bought per expected NDCG lost, a user's probes taken in order (the ratios made
    non-increasing along a user's levels, so taking them best first keeps that order)."""
    users, levels = e_ndcg.shape
    cost = np.maximum(e_ndcg[:, :-1] - e_ndcg[:, 1:], 1e-12)
    gain = e_new[:, 1:] - e_new[:, :-1]
    ratio = np.minimum.accumulate(gain / cost, axis=1)
    order = np.argsort(-ratio.ravel(), kind="stable")[:budget]
    level = np.zeros(users, dtype=np.int64)
    np.maximum.at(level, order // (levels - 1), order % (levels - 1) + 1)
    return level


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", nargs="?", default="warehouse.duckdb")
    parser.add_argument("--candidates", type=int, default=600)
    parser.add_argument("--passes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    pool = Pool(args.warehouse, args.candidates, args.passes, args.seed)
    users = pool.candidates.groups["user_id"].to_numpy()
    print(f"{pool.n_users} validation users, {len(pool.new_target)} with a new-interest valid item; "
          f"LM top {args.candidates}, scored in {pool.seconds:.0f} s")
    lm_lists = rerank.exploit_lists(pool.candidates, LENGTH)
    base = pool.measure(lm_lists)
    print(f"lm: {fmt(base)}")

    by_level = [pool.explore(2 * level, **PROBE) for level in LEVELS]
    model = [expected(pool, lists) for lists in by_level]
    for m in model:
        assert m["user_id"].to_numpy().tolist() == users.tolist()
    e_ndcg = np.stack([m["e_ndcg"].to_numpy() for m in model], axis=1)
    e_new = np.stack([m["e_new"].to_numpy() for m in model], axis=1)

    print("\nuniform: every user the same probes (share of the list)")
    for level in LEVELS[1:]:
        m = pool.measure(by_level[level])
        print(f"  {level} probe(s) in the top {K}: {fmt(m)}  NDCG x{m['ndcg'] / base['ndcg']:.3f}  "
              f"new-interest hits x{m['new_hit'] / base['new_hit']:.2f}  coverage x{m['coverage'] / base['coverage']:.2f}")

    print("\nallocated: B probes where the LM expects them to cost least NDCG per new-interest hit bought")
    print(f"  {'B':>5} {'model NDCG':>10} {'model hits':>10} | measured on the valid events")
    user_index = pl.DataFrame({"user_id": users, "level": np.zeros(users.size, dtype=np.int64)})
    for per_user in BUDGETS:
        level = allocate(e_ndcg, e_new, round(per_user * users.size))
        rows = np.arange(users.size)
        model_ndcg = e_ndcg[rows, level].sum() / e_ndcg[:, 0].sum()
        model_hits = e_new[rows, level].sum() / e_new[:, 0].sum()
        chosen = user_index.with_columns(pl.Series("level", level))
        lists = pl.concat([by_level[lv].join(chosen.filter(pl.col("level") == lv).select("user_id"), on="user_id")
                           for lv in LEVELS])
        m = pool.measure(lists)
        print(f"  {int(level.sum()):>5} {model_ndcg:>9.3f}x {model_hits:>9.2f}x | {fmt(m)}  NDCG x{m['ndcg'] / base['ndcg']:.3f}  "
              f"new-interest hits x{m['new_hit'] / base['new_hit']:.2f}  coverage x{m['coverage'] / base['coverage']:.2f}")

    print(f"\nthe LM's probabilities against the valid events, over lm's top {K} (expected hits = the sum of the "
          "candidates' probabilities):")
    rows = pool.candidates.frame.select("user_id", "item_id", "score").with_columns(pl.Series("is_new", pool.outside))
    top = lm_lists.filter(pl.col("rank") <= K).select("user_id", "item_id").join(rows, on=["user_id", "item_id"])
    top = top.with_columns(pl.Series("hit", [pool.target.get(u) == i for u, i in
                                             zip(top["user_id"].to_list(), top["item_id"].to_list())]))
    for label, part in (("items of the user's interests", top.filter(~pl.col("is_new"))),
                        ("new-interest items", top.filter(pl.col("is_new")))):
        e, a = part["score"].sum(), int(part["hit"].sum())
        print(f"  {label}: {part.height} slots, expected hits {e:.1f}, hits {a} ({a / max(e, 1e-12):.1f} x expected)")

    print("\nthe bar's denominator: lm with the scores of items of the user's interests multiplied by a, "
          "new-interest items left as they are")
    frame = pool.candidates.frame
    for a in (1.0, 1.5, 2.0):
        scores = frame["score"].to_numpy() * np.where(pool.outside, 1.0, a)
        boosted = rerank.Candidates.from_frame(frame.with_columns(pl.Series("score", scores)), pool.histories)
        m = pool.measure(rerank.exploit_lists(boosted, LENGTH))
        print(f"  a={a:g}: {fmt(m)}  NDCG x{m['ndcg'] / base['ndcg']:.3f}  new-interest hits x{m['new_hit'] / base['new_hit']:.2f}")


if __name__ == "__main__":
    main()
