"""eval.tradeoff_lists: the holdout lists of every setting of the re-rankers' grid.

For each setting of var rerank.tradeoff_* (MMR lambdas, calibration lambdas, exploration
shares) the holdout lists of lm_mmr, lm_calibrated and lm_explore are rebuilt from
recs.lm_candidates (and, for lm_explore, recs.lm_candidate_uncertainty) with the code of the
served lists, without retraining or rescoring; the `lm` setting is the unre-ranked exploit
list and `is_default` marks the settings the served lists use. Lists are built at max(var ks),
as the served lists are, and kept up to K = var rerank.tradeoff_k. eval.tradeoff measures
them with the SQL rules of eval.user_metrics / eval.metrics. Built a block of holdout users
at a time (duckrec.ml.rerank.blocks), exploration's repeat counts carried from block to
block: the same lists as one pass over all users. On a log of more than var
rerank.tradeoff_users holdout users (5,000) the lists are those of a seeded sample of them
(the served shares' slots are still split over all users); eval.tradeoff then measures the
sample, with its intervals, and its is_default rows are the sample's figures, not
eval.metrics'.
"""
import polars as pl

from duckrec.ml import rerank

PURPOSE = "holdout"


def model(dbt, session):
    dbt.config(materialized="table")
    # the settings chosen on this build's validation split (eval.explore_choice), or the hand-set ones
    settings = rerank.chosen_settings(rerank.RerankSettings.from_vars(dbt.var("rerank", {})),
                                      dbt.ref("explore_choice").pl())
    list_length = max(dbt.var("ks", [10]))
    seed = int(dbt.var("seed", 42))
    # exploration's pool (var rerank.explore_candidates); the other re-rankers read the first lm.candidates
    max_rank = (dbt.var("lm", {}) or {}).get("candidates", 100)
    # the catalogue's interests (features.item_interests): calibration's genres, or clusters
    items = dbt.ref("item_interests").pl().select("item_id", pl.col("interests").alias("genres"))
    embeddings = dbt.ref("item_embeddings").pl()
    item_popularity = dbt.ref("item_popularity").pl().filter(pl.col("purpose") == PURPOSE)
    segments = dbt.ref("user_rfm_by_purpose").pl().filter(pl.col("purpose") == PURPOSE)
    candidates, fit_events = dbt.ref("lm_candidates"), dbt.ref("fit_events").project("purpose, user_id, item_id, position")
    uncertainty, interests = dbt.ref("lm_candidate_uncertainty"), dbt.ref("lm_candidate_interests")
    counts = candidates.aggregate("purpose, user_id, count(*) as rows", "purpose, user_id").pl() \
        .filter(pl.col("purpose") == PURPOSE)
    # at most var rerank.tradeoff_users holdout users (a seeded sample): the curve's cost stays bounded
    sample = rerank.sample_users(counts["user_id"].to_numpy(), settings.tradeoff_users, seed)
    sampled = sample.size < counts.height
    if sampled:
        dbt.log(f"tradeoff_lists: a seeded sample of {sample.size} of {counts.height} holdout users "
                f"(var rerank.tradeoff_users)")
        counts = counts.filter(pl.col("user_id").is_in(sample.tolist()))
    blocks = rerank.user_blocks(counts)

    def rows(relation, block):
        """The block's rows of a relation, the sampled users' only."""
        frame = relation.filter(block.where()).pl()
        return frame.filter(pl.col("user_id").is_in(sample.tolist())) if sampled else frame

    # the served shares' slots of every user at once (the first list_length candidates decide them)
    segment_slots = rerank.slots_by_user(
        rerank.Candidates.from_frame(candidates.filter(f"purpose = '{PURPOSE}' and rank <= {list_length}").pl()),
        segments, settings.explore_shares, list_length, settings.explore_default_share, seed=seed)
    # the first pass: the items every setting's exploit slots show, over all blocks
    counts = {}
    for block in blocks:
        rerank.tradeoff_exposure(settings, candidates=rows(candidates, block),
                                 fit_events=rows(fit_events, block), segments=block.of(segments),
                                 list_length=list_length, probe_counts=counts, seed=seed,
                                 segment_slots=segment_slots)
    yield pl.DataFrame(schema=rerank.TRADEOFF_SCHEMA)
    total = rerank.tradeoff_setting_count(settings) * len(blocks)
    done, users = 0, 0

    def report(_, __, last):
        nonlocal done
        done += 1
        dbt.progress("re-ranking settings", done, total, {"last": last}, unit="setting", final=done == total)

    for block in blocks:
        lists = rerank.tradeoff_lists(
            settings,
            candidates=rows(candidates, block),
            fit_events=rows(fit_events, block),
            items=items,
            embeddings=embeddings,
            uncertainty=rows(uncertainty, block),
            interests=rows(interests, block),
            item_popularity=item_popularity,
            segments=block.of(segments),
            list_length=list_length,
            max_rank=max_rank,
            seed=seed,
            progress=report,
            probe_counts=counts,
            segment_slots=segment_slots,
        )
        users += lists["user_id"].n_unique()
        yield lists
    dbt.log(f"tradeoff_lists: {rerank.tradeoff_setting_count(settings)} settings over {users} holdout users "
            f"in {len(blocks)} blocks, lists of {list_length} kept to K={settings.tradeoff_k}")
