"""The `lm` strategy: the LM's top K (exploit), explained by the user's last item."""
import polars as pl


def model(dbt, session):
    dbt.config(materialized="table")
    k = max(dbt.var("ks", [10]))
    candidates = dbt.ref("lm_candidates").pl().filter(pl.col("rank") <= k)
    events = dbt.ref("event_splits").pl()
    titles = dbt.ref("items").pl().select("item_id", "title")
    last = pl.concat([
        events.filter(pl.col("split") != "test").with_columns(pl.lit("holdout").alias("purpose")),
        events.with_columns(pl.lit("served").alias("purpose")),
    ]).sort("position").group_by("purpose", "user_id").agg(pl.col("item_id").last().alias("last_item"))
    reasons = last.join(titles, left_on="last_item", right_on="item_id", how="left").select(
        "purpose", "user_id", ("after " + pl.col("title")).alias("reason"))
    return (
        candidates.join(reasons, on=["purpose", "user_id"], how="left")
        .with_columns(pl.lit("lm").alias("strategy"), pl.lit(False).alias("is_exploration"),
                      pl.col("reason").fill_null("popular now"))
        .select("purpose", "strategy", "user_id", "rank", "item_id", "score", "is_exploration", "reason")
        .sort("purpose", "user_id", "rank")
    )
