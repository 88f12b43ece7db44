"""The `lm` strategy: the LM's top K (exploit), explained by the user's last history item
(features.list_users); served lists var k long, holdout lists max(var ks)."""
import polars as pl

from duckrec.ml import rerank


def model(dbt, session):
    dbt.config(materialized="table")
    lengths = rerank.list_lengths(dbt.var("k", 10), dbt.var("ks", [10]))
    # only the ranks a list can show are read: the pool is 600 deep for exploration
    candidates = rerank.cut_lists(dbt.ref("lm_candidates").filter(f"rank <= {max(lengths.values())}").pl(), lengths)
    titles = dbt.ref("items").pl().select("item_id", "title")
    reasons = (
        dbt.ref("list_users").pl()
        .join(titles, left_on="last_item_id", right_on="item_id", how="left")
        .select("purpose", "user_id", ("after " + pl.col("title")).alias("reason"))
    )
    return (
        candidates.join(reasons, on=["purpose", "user_id"], how="left")
        .with_columns(pl.lit("lm").alias("strategy"), pl.lit(False).alias("is_exploration"),
                      pl.col("reason").fill_null("popular now"))
        .select("purpose", "strategy", "user_id", "rank", "item_id", "score", "is_exploration", "reason")
        .sort("purpose", "user_id", "rank")
    )
