"""The LM's top-N candidates per user: 'holdout' (history = train + valid) and 'served'
(history = every event). The re-rankers read these."""
import numpy as np
import polars as pl

from duckrec.ml import TrainedLM, top_k, user_sequences


def model(dbt, session):
    dbt.config(materialized="table")
    lm = TrainedLM.from_bytes(dbt.ref("lm_checkpoints").pl()["state"][0])
    events = dbt.ref("event_splits").pl()
    n = max(int((dbt.var("lm", {}) or {}).get("candidates", 100)), max(dbt.var("ks", [10])))
    index = lm.catalogue.index(events["item_id"].to_numpy(), where="event_splits.item_id")
    users, positions, split = events["user_id"].to_numpy(), events["position"].to_numpy(), events["split"].to_numpy()
    frames = []
    # holdout lists only for users with a test event: they are the ones eval.* scores
    evaluated = np.isin(users, users[split == "test"])
    for purpose, keep in (("holdout", (split != "test") & evaluated), ("served", np.ones(len(split), dtype=bool))):
        ids, seqs = user_sequences(users[keep], index[keep], positions[keep])
        # the n-gram half counts over exactly the events that are history for this purpose
        items, scores = top_k(lm, seqs, n, progress=_named(dbt, purpose))
        found = np.isfinite(scores)
        rows, ranks = np.nonzero(found)
        frames.append(pl.DataFrame({
            "purpose": pl.Series([purpose] * len(rows), dtype=pl.Utf8),
            "user_id": pl.Series(ids[rows], dtype=pl.Int64),
            "rank": pl.Series(ranks + 1, dtype=pl.Int32),
            "item_id": pl.Series(lm.catalogue.item_ids[items[found] - 1], dtype=pl.Int64),
            "score": pl.Series(scores[found], dtype=pl.Float64),
        }))
        dbt.log(f"{purpose}: top {n} LM candidates for {len(ids)} users")
    return pl.concat(frames)


def _named(dbt, purpose):
    return lambda task, *args, **kwargs: dbt.progress(f"{purpose} {task}", *args, **kwargs)
