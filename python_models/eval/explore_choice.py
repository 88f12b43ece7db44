"""eval.explore_choice: each re-ranker's setting, chosen on this build's VALIDATION split.

The promise is stated in vars (rerank.explore.max_ndcg_loss, rerank.mmr.max_ndcg_loss,
rerank.calibration.max_ndcg_loss: the share of lm's NDCG@K a re-ranker may lose). Up to var
rerank.choice_users users with a valid event (drawn by var seed) get the LM's top
rerank.explore_candidates candidates scored from their TRAIN events, with MC-dropout
uncertainty, as recs.lm_candidates and recs.lm_candidate_uncertainty score a purpose; each
re-ranker's lists are rebuilt under every setting of its grid with the code of the served
lists and measured against the users' VALID event (NDCG@K ratio to lm, coverage ratio,
novelty gain, each with a seeded paired bootstrap interval over users). A setting keeps
its promise when the one-sided lower bound (var rerank.promise_confidence) of its NDCG ratio
is >= 1 - max_ndcg_loss; the
most acting such setting is chosen (duckrec.ml.rerank.choice). recs.lm_explore_lists,
lm_mmr_lists, lm_calibrated_lists and eval.tradeoff_lists serve the chosen settings. The
test split is never read here. The users' interests are weighed over their train events (the
rule of features.fit_interests); popularity and segments are the holdout purpose's (train +
valid events: one event per user more).
"""
import polars as pl

from duckrec.ml import latest_checkpoint, rerank
from duckrec.ml.score import CHECKPOINT_ORDER


def model(dbt, session):
    dbt.config(materialized="table")
    settings = rerank.RerankSettings.from_vars(dbt.var("rerank", {}))
    if not settings.choose_on_validation:
        dbt.log("explore_choice: var rerank.choose_on_validation is false: the hand-set settings serve")
        return pl.DataFrame(schema={"checkpoint_id": pl.Utf8, **rerank.CHOICE_SCHEMA})
    seed = int(dbt.var("seed", 42))
    lm_vars = dbt.var("lm", {}) or {}
    list_length = max(dbt.var("ks", [10]))
    max_rank = int(lm_vars.get("candidates", 100))
    n = max(max_rank, settings.explore_candidates, list_length)
    splits = dbt.ref("event_splits").project("user_id, item_id, position, split").pl()
    valid = splits.filter(pl.col("split") == "valid").select("user_id", "item_id")
    users = rerank.sample_users(valid["user_id"].to_numpy(), settings.choice_users, seed)
    if users.size == 0:
        dbt.log("warning: explore_choice: no user has a valid event: the hand-set settings serve")
        return pl.DataFrame(schema={"checkpoint_id": pl.Utf8, **rerank.CHOICE_SCHEMA})
    valid = valid.filter(pl.col("user_id").is_in(users.tolist()))
    train = splits.filter((pl.col("split") == "train") & pl.col("user_id").is_in(users.tolist()))
    # the catalogue's interests (features.item_interests: genres, or clusters without labels),
    # weighed over the users' TRAIN events only, so a valid item is new or not as it would be
    items = dbt.ref("item_interests").pl().select("item_id", pl.col("interests").alias("genres"))
    interests = rerank.history_interests(train, items, window=int(dbt.var("short_term_events", 20)),
                                         mix=float(dbt.var("interest_short_term_mix", 0.5)),
                                         top_n=int(dbt.var("top_interests", 3)))
    popularity = dbt.ref("item_popularity").filter("purpose = 'holdout'").pl()
    segments = dbt.ref("user_rfm_by_purpose").filter("purpose = 'holdout'").pl()
    checkpoints = dbt.ref("lm_checkpoints")
    checkpoint_id = checkpoints.order(CHECKPOINT_ORDER).limit(1).project("checkpoint_id").fetchall()[0][0]
    pool = rerank.ValidationPool.score(
        latest_checkpoint(checkpoints), train, valid, n=n, passes=int(lm_vars.get("mc_passes", 20)),
        seed=seed, interests=interests, items=items, item_popularity=popularity)
    rows = rerank.choice_rows(
        settings, pool, items=items, embeddings=dbt.ref("item_embeddings").pl(), segments=segments,
        bits=popularity.select("item_id", "novelty_bits"), list_length=list_length, max_rank=max_rank,
        k=settings.tradeoff_k, replicates=int(dbt.var("bootstrap_replicates", 200)),
        level=float(dbt.var("bootstrap_level", 0.95)), seed=seed, log=dbt.log)
    return rows.select(pl.lit(checkpoint_id, pl.Utf8).alias("checkpoint_id"), pl.all())
