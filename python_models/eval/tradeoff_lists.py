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


def model(dbt, session):
    dbt.config(materialized="table")
    settings = rerank.RerankSettings.from_vars(dbt.var("rerank", {}))
    list_length = max(dbt.var("ks", [10]))

    def holdout(relation):
        return relation.pl().filter(pl.col("purpose") == PURPOSE)

    def report(done, total, last):
        dbt.progress("re-ranking settings", done, total, {"last": last}, unit="setting", final=done == total)

    lists = rerank.tradeoff_lists(
        settings,
        candidates=holdout(dbt.ref("lm_candidates")),
        fit_events=holdout(dbt.ref("fit_events")),
        items=dbt.ref("items").pl(),
        embeddings=dbt.ref("item_embeddings").pl(),
        uncertainty=holdout(dbt.ref("lm_candidate_uncertainty")),
        interests=holdout(dbt.ref("lm_candidate_interests")),
        item_popularity=holdout(dbt.ref("item_popularity")),
        segments=holdout(dbt.ref("user_rfm_by_purpose")),
        list_length=list_length,
        # exploration's pool (var rerank.explore_candidates); the other re-rankers read the first lm.candidates
        max_rank=(dbt.var("lm", {}) or {}).get("candidates", 100),
        seed=int(dbt.var("seed", 42)),
        progress=report,
    )
    dbt.log(f"tradeoff_lists: {rerank.tradeoff_setting_count(settings)} settings over "
            f"{lists['user_id'].n_unique()} holdout users, lists of {list_length} kept to K={settings.tradeoff_k}")
    return lists
