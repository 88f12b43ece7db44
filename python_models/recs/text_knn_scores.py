"""text_knn's scored candidates: for every list user (features.list_users) and purpose, the
items whose text embedding (ml.item_text_embeddings) is closest to the user's recent history
(duckrec.ml.text_knn: a recency-weighted mean of the last var text.knn_history_events events'
embeddings, var text.knn_half_life), at most the purpose's list length of them (var k served,
max(var ks) holdout), never a history item. The 'holdout' purpose reads only its fit events
(features.fit_events), and the texts' tags are holdout-visible (features.item_texts).

closest_history_item is the recent history item whose text is closest to the candidate, which
names the reason. Users are scored var text.knn_block_users at a time against every item.
"""
import polars as pl

from duckrec.ml import rerank
from duckrec.ml.text import text_settings
from duckrec.ml.text_knn import SCHEMA as CANDIDATES, text_knn_candidates

SCHEMA = {"purpose": pl.Utf8, **CANDIDATES}


def model(dbt, session):
    dbt.config(materialized="table")
    settings = text_settings(dbt.var("text", {}))
    lengths = rerank.list_lengths(dbt.var("k", 10), dbt.var("ks", [10]))
    embeddings = dbt.ref("item_text_embeddings").pl().sort("item_id")
    users = dbt.ref("list_users").pl().select("purpose", pl.col("user_id").cast(pl.Int64))
    fit = dbt.ref("fit_events").pl().select("purpose", pl.col("user_id").cast(pl.Int64),
                                            pl.col("item_id").cast(pl.Int64), "position")
    popularity = dbt.ref("item_popularity").pl()
    yield pl.DataFrame(schema=SCHEMA)
    if not settings["enabled"] or embeddings.is_empty():
        return
    item_ids = embeddings["item_id"].to_numpy()
    vectors = embeddings["embedding"].to_numpy()
    for purpose in sorted(lengths):
        ranks = popularity.filter(pl.col("purpose") == purpose).select(pl.col("item_id").cast(pl.Int64),
                                                                        "popularity_rank")
        rank_of = pl.DataFrame({"item_id": item_ids}).join(ranks, on="item_id", how="left")
        history = fit.filter(pl.col("purpose") == purpose).join(
            users.filter(pl.col("purpose") == purpose), on=["purpose", "user_id"], how="semi")

        def progress(done, total, purpose=purpose):
            dbt.progress(f"text_knn scoring ({purpose})", done, total, unit="user", final=done == total)

        for frame in text_knn_candidates(
                history, item_ids, vectors, rank_of["popularity_rank"].fill_null(1 << 62).to_numpy(),
                lengths[purpose], history_events=int(settings["knn_history_events"]),
                half_life=float(settings["knn_half_life"]), block_users=int(settings["knn_block_users"]),
                progress=progress):
            yield frame.with_columns(pl.lit(purpose).alias("purpose")).select(list(SCHEMA))
