"""The LM's top-N candidates per list purpose and user: for every user that gets a list
(features.list_users), scored from the history that purpose may see (features.fit_events).
The re-rankers read these. Written a chunk of users at a time, as they are scored."""
import numpy as np
import polars as pl

from duckrec.ml import iter_top_k, latest_checkpoint, list_histories
from duckrec.ml.threads import scoring_heap


def model(dbt, session):
    dbt.config(materialized="table")
    lm = latest_checkpoint(dbt.ref("lm_checkpoints"))
    fit = dbt.ref("fit_events").project("purpose, user_id, item_id, position").pl()
    list_users = dbt.ref("list_users").pl()
    # exploration reaches further down the LM's ranking (var rerank.explore_candidates) than
    # the other re-rankers (var lm.candidates), which cut the pool back with Candidates' max_rank
    pool = max(int((dbt.var("lm", {}) or {}).get("candidates", 100)),
               int((dbt.var("rerank", {}) or {}).get("explore_candidates", 100)))
    n = max(pool, max(dbt.var("ks", [10])), int(dbt.var("k", 10)))
    yield _frame("", np.zeros(0, np.int64), np.zeros((0, n), np.int64), np.zeros((0, n)), lm)  # the columns
    with scoring_heap():
        for purpose in sorted(list_users["purpose"].unique().to_list()):
            events = fit.filter(pl.col("purpose") == purpose)
            # a list user without a visible event starts from the model's initial state
            ids, seqs = list_histories(lm.catalogue, events["user_id"].to_numpy(), events["item_id"].to_numpy(),
                                       events["position"].to_numpy(),
                                       list_users.filter(pl.col("purpose") == purpose)["user_id"].to_numpy(),
                                       where="fit_events.item_id")
            # the n-gram half counts over exactly the histories scored here
            for start, items, scores in iter_top_k(lm, seqs, n, progress=_named(dbt, purpose)):
                yield _frame(purpose, ids[start : start + len(items)], items, scores, lm)
            dbt.log(f"{purpose}: top {n} LM candidates for {len(ids)} users")


def _frame(purpose, ids, items, scores, lm):
    found = np.isfinite(scores)
    rows, ranks = np.nonzero(found)
    return pl.DataFrame({
        "purpose": pl.Series([purpose] * len(rows), dtype=pl.Utf8),
        "user_id": pl.Series(ids[rows], dtype=pl.Int64),
        "rank": pl.Series(ranks + 1, dtype=pl.Int32),
        "item_id": pl.Series(lm.catalogue.item_ids[items[found] - 1], dtype=pl.Int64),
        "score": pl.Series(scores[found], dtype=pl.Float64),
    })


def _named(dbt, purpose):
    return lambda task, *args, **kwargs: dbt.progress(f"{purpose} {task}", *args, **kwargs)
