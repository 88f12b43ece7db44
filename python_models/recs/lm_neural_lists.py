"""The `lm_neural` strategy: the sequence model's own top K, without the n-gram half of the
mixture (rnn_weight 1), so the neural part is measured on its own in eval.metrics. Scored
from the history each purpose may see (features.fit_events), history excluded, for every
list user (features.list_users), a chunk of users at a time; explained as lm is, by the
user's last history item. Served lists var k long, holdout lists max(var ks)."""
from dataclasses import replace

import numpy as np
import polars as pl

from duckrec.ml import iter_top_k, latest_checkpoint, list_histories, rerank
from duckrec.ml.threads import scoring_heap


def model(dbt, session):
    dbt.config(materialized="table")
    lm = latest_checkpoint(dbt.ref("lm_checkpoints"))
    lm = replace(lm, mixture=replace(lm.mixture, rnn_weight=1.0))  # the neural half alone
    fit = dbt.ref("fit_events").project("purpose, user_id, item_id, position").pl()
    list_users = dbt.ref("list_users").pl()
    lengths = rerank.list_lengths(dbt.var("k", 10), dbt.var("ks", [10]))
    titles = dbt.ref("items").pl().select("item_id", "title")
    reasons = (list_users.join(titles, left_on="last_item_id", right_on="item_id", how="left")
               .select("purpose", "user_id", ("after " + pl.col("title")).alias("reason")))
    yield _frame("", np.zeros(0, np.int64), np.zeros((0, 1), np.int64), np.zeros((0, 1)), lm, reasons)
    with scoring_heap():
        for purpose in sorted(list_users["purpose"].unique().to_list()):
            n = int(lengths[purpose])
            events = fit.filter(pl.col("purpose") == purpose)
            # a list user without a visible event starts from the model's initial state
            ids, seqs = list_histories(lm.catalogue, events["user_id"].to_numpy(), events["item_id"].to_numpy(),
                                       events["position"].to_numpy(),
                                       list_users.filter(pl.col("purpose") == purpose)["user_id"].to_numpy(),
                                       where="fit_events.item_id")
            for start, items, scores in iter_top_k(lm, seqs, n, ngram=None):
                yield _frame(purpose, ids[start : start + len(items)], items, scores, lm, reasons)
            dbt.log(f"{purpose}: top {n} of the neural half alone for {len(ids)} users")


def _frame(purpose, ids, items, scores, lm, reasons):
    found = np.isfinite(scores)
    rows, ranks = np.nonzero(found)
    frame = pl.DataFrame({
        "purpose": pl.Series([purpose] * len(rows), dtype=pl.Utf8),
        "user_id": pl.Series(ids[rows], dtype=pl.Int64),
        "rank": pl.Series(ranks + 1, dtype=pl.Int32),
        "item_id": pl.Series(lm.catalogue.item_ids[items[found] - 1], dtype=pl.Int64),
        "score": pl.Series(scores[found], dtype=pl.Float64),
    })
    return (
        frame.join(reasons, on=["purpose", "user_id"], how="left")
        .with_columns(pl.lit("lm_neural").alias("strategy"), pl.lit(False).alias("is_exploration"),
                      pl.col("reason").fill_null("popular now"))
        .select("purpose", "strategy", "user_id", "rank", "item_id", "score", "is_exploration", "reason")
    )
