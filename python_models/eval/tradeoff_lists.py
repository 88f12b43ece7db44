"""eval.tradeoff_lists: the holdout lists of every setting of the re-rankers' grid.

For each setting of var rerank.tradeoff_* (MMR lambdas, calibration lambdas, exploration
shares) the holdout lists of lm_mmr, lm_calibrated and lm_explore are rebuilt from
recs.lm_candidates (and, for lm_explore, recs.lm_candidate_uncertainty) with the code of the
served lists, without retraining or rescoring; the `lm` setting is the unre-ranked exploit
list and `is_default` marks the settings the served lists use. Lists are built at max(var ks),
as the served lists are, and kept up to K = var rerank.tradeoff_k. eval.tradeoff measures
them with the SQL rules of eval.user_metrics / eval.metrics.
"""
import polars as pl

from duckrec.ml import rerank

PURPOSE = "holdout"

SCHEMA = {
    "strategy": pl.Utf8, "parameter": pl.Utf8, "value": pl.Float64, "setting": pl.Utf8, "is_default": pl.Boolean,
    "user_id": pl.Int64, "rank": pl.Int32, "item_id": pl.Int64, "is_exploration": pl.Boolean,
}


def model(dbt, session):
    dbt.config(materialized="table")
    settings = rerank.RerankSettings.from_vars(dbt.var("rerank", {}))
    list_length = max(dbt.var("ks", [10]))
    k = settings.tradeoff_k
    seed = int(dbt.var("seed", 42))
    items = dbt.ref("items").pl()
    histories = rerank.purpose_histories(dbt.ref("fit_events").pl().filter(pl.col("purpose") == PURPOSE))
    candidates = rerank.Candidates.from_frame(
        dbt.ref("lm_candidates").pl().filter(pl.col("purpose") == PURPOSE), histories
    )
    frames = []
    n_settings = 1 + sum(map(len, (settings.tradeoff_mmr_lambdas, settings.tradeoff_calibration_lambdas,
                                   settings.tradeoff_explore_shares))) + 1

    def add(strategy, parameter, value, lists, is_default):
        if parameter is None:
            setting = "exploit"
        elif value is None:
            setting = f"{parameter}=segments"
        else:
            setting = f"{parameter}={value:g}"
        frames.append(
            lists.filter(pl.col("rank") <= k).select(
                pl.lit(strategy, pl.Utf8).alias("strategy"),
                pl.lit(parameter, pl.Utf8).alias("parameter"),
                pl.lit(value, pl.Float64).alias("value"),
                pl.lit(setting, pl.Utf8).alias("setting"),
                pl.lit(is_default, pl.Boolean).alias("is_default"),
                "user_id", "rank", "item_id", "is_exploration",
            )
        )
        dbt.progress("re-ranking settings", len(frames), n_settings, {"last": f"{strategy} {setting}"}, unit="setting",
                     final=len(frames) == n_settings)

    add("lm", None, None, rerank.exploit_lists(candidates, list_length), True)

    vectors = rerank.embedding_matrix(candidates.item_ids(), dbt.ref("item_embeddings").pl())
    for lam in settings.tradeoff_mmr_lambdas:
        add("lm_mmr", "lambda", lam, rerank.mmr_lists(candidates, vectors, list_length, lam),
            lam == settings.mmr_lambda)

    item_genres, _ = rerank.genre_matrix(candidates.item_ids(), items)
    target_mixes = rerank.history_genre_mix(candidates.groups, histories, items)
    for lam in settings.tradeoff_calibration_lambdas:
        add("lm_calibrated", "lambda", lam,
            rerank.calibrated_lists(candidates, item_genres, target_mixes, list_length, lam),
            lam == settings.calibration_lambda)

    uncertainty = dbt.ref("lm_candidate_uncertainty").pl().filter(pl.col("purpose") == PURPOSE)
    mean, std = rerank.uncertainty_of(candidates, uncertainty)
    outside, probes = rerank.interest_flags_of(
        candidates, dbt.ref("lm_candidate_interests").pl().filter(pl.col("purpose") == PURPOSE)
    )

    def explore(slots):
        return rerank.explore_lists(candidates, mean, std, outside, probes, slots, list_length,
                                    rule=settings.explore_rule, beta=settings.explore_beta, seed=seed,
                                    placement=settings.explore_placement,
                                    distinct_interests=settings.explore_distinct_interests,
                                    repeat_penalty=settings.explore_repeat_penalty)

    for share in settings.tradeoff_explore_shares:
        uniform = rerank.exploration_slots(None, {}, list_length, default_share=share)
        add("lm_explore", "share", share, explore(uniform), False)
    segments = dbt.ref("user_rfm_by_purpose").pl().filter(pl.col("purpose") == PURPOSE)
    segment_slots = rerank.slots_per_group(candidates.groups, segments, settings.explore_shares,
                                           list_length, settings.explore_default_share)
    add("lm_explore", "share", None, explore(segment_slots), True)

    dbt.log(f"tradeoff_lists: {len(frames)} settings over {candidates.groups.height} holdout users, "
            f"lists of {list_length} kept to K={k}")
    return pl.concat(frames).cast(SCHEMA)
