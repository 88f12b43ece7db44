"""eval.tradeoff: what re-ranking costs in accuracy and what it buys in discovery.

For each setting of a grid (var rerank.tradeoff_*: MMR lambdas, calibration lambdas,
exploration shares) the holdout lists of lm_mmr, lm_calibrated and lm_explore are rebuilt
from recs.lm_candidates (and, for lm_explore, recs.lm_candidate_uncertainty), without
retraining or rescoring, and measured at K = var rerank.tradeoff_k with
the definitions of eval.user_metrics / eval.metrics (NDCG, hit rate, coverage, genre-Jaccard
diversity, novelty, new-interest hit rate). One row per strategy and setting; the `lm` row is
the unre-ranked exploit list, and `is_default` marks the settings the served lists use.
Lists are built at max(var ks) and cut at K, as the served lists are, so each default row
matches that strategy's row of eval.metrics.
"""
import numpy as np
import polars as pl

from duckrec.ml import rerank

PURPOSE = "holdout"


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
    interests = (
        dbt.ref("user_interests_holdout").pl()
        .filter(pl.col("interest_type") == "genre")
        .with_columns(purpose=pl.lit(PURPOSE))
    )
    measure = _Measure(
        tests=dbt.ref("event_splits").pl().filter(pl.col("split") == "test").select("user_id", "item_id"),
        items=items,
        novelty=dbt.ref("item_stats").pl().select("item_id", "novelty_bits"),
        top_genres=interests.filter(pl.col("is_top")),
        k=k,
    )
    rows = []

    def add(strategy, parameter, value, lists, is_default):
        if parameter is None:
            setting = "exploit"
        elif value is None:
            setting = f"{parameter}=segments"
        else:
            setting = f"{parameter}={value:g}"
        rows.append({"strategy": strategy, "parameter": parameter, "value": value, "setting": setting,
                     "is_default": is_default, **measure(lists)})

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
    outside, probes = rerank.top_genre_flags(candidates, items, interests)

    def explore(slots):
        return rerank.explore_lists(candidates, mean, std, outside, probes, slots, list_length,
                                    rule=settings.explore_rule, beta=settings.explore_beta, seed=seed,
                                    placement=settings.explore_placement,
                                    distinct_interests=settings.explore_distinct_interests,
                                    repeat_penalty=settings.explore_repeat_penalty)

    for share in settings.tradeoff_explore_shares:
        uniform = rerank.exploration_slots(None, {}, list_length, default_share=share)
        add("lm_explore", "share", share, explore(uniform), False)
    segment_slots = rerank.slots_per_group(candidates.groups, dbt.ref("user_rfm").pl(), settings.explore_shares,
                                           list_length, settings.explore_default_share)
    add("lm_explore", "share", None, explore(segment_slots), True)

    dbt.log(f"tradeoff: {len(rows)} settings over {candidates.groups.height} holdout users at K={k}")
    return pl.DataFrame(rows, schema=_SCHEMA, orient="row")


_SCHEMA = {
    "strategy": pl.Utf8, "parameter": pl.Utf8, "value": pl.Float64, "setting": pl.Utf8, "is_default": pl.Boolean,
    "k": pl.Int32, "n_users": pl.Int64, "ndcg": pl.Float64, "hit_rate": pl.Float64, "coverage": pl.Float64,
    "diversity": pl.Float64, "novelty": pl.Float64, "new_interest_hit_rate": pl.Float64,
    "n_new_interest_users": pl.Int64, "exploration_share": pl.Float64,
}


class _Measure:
    """eval.user_metrics and eval.metrics, for one strategy's holdout lists at one K."""

    def __init__(self, tests, items, novelty, top_genres, k):
        self.k = k
        self.n_items = items.height
        self.genres_of = dict(zip(items["item_id"].to_list(), items["genres"].to_list()))
        # multi-hot genres of staging.items, rows in item_id order (diversity)
        self.item_ids_sorted = np.sort(items["item_id"].cast(pl.Int64).to_numpy())
        self.known_items = pl.DataFrame({"item_id": self.item_ids_sorted})
        names = sorted({g for gs in self.genres_of.values() for g in (gs or [])})
        column = {g: n for n, g in enumerate(names)}
        self.genre_hot = np.zeros((self.item_ids_sorted.size, max(len(names), 1)))
        for row, item in enumerate(self.item_ids_sorted.tolist()):
            for g in self.genres_of.get(item) or []:
                self.genre_hot[row, column[g]] = 1.0
        top = top_genres.group_by("user_id").agg(pl.col("interest").alias("top"))
        top_of = dict(zip(top["user_id"].to_list(), top["top"].to_list()))
        self.tests = tests.with_columns(
            is_new_interest=pl.Series([
                not set(self.genres_of.get(i) or []) & set(top_of.get(u) or [])
                for u, i in zip(tests["user_id"].to_list(), tests["item_id"].to_list())
            ], dtype=pl.Boolean)
        )
        # sorted, and joined keeping that order, so float sums run in one order: same lists,
        # bit-identical rows (polars' group_by returns groups in no fixed order)
        self.users = self.tests.group_by("user_id").agg(
            n_test=pl.len(), is_new_interest_user=pl.col("is_new_interest").any()
        ).sort("user_id")
        self.novelty = novelty

    def __call__(self, lists: pl.DataFrame) -> dict:
        top = (
            lists.filter(pl.col("rank") <= self.k).join(self.users.select("user_id"), on="user_id", how="semi")
            .sort("user_id", "rank")
        )
        hits = top.join(self.tests, on=["user_id", "item_id"], maintain_order="left").group_by(
            "user_id", maintain_order=True
        ).agg(
            n_hits=pl.len(), dcg=(1 / (pl.col("rank") + 1).log(2)).sum(), new_hit=pl.col("is_new_interest").any()
        )
        ideal = np.cumsum(1 / np.log2(np.arange(2, self.k + 2)))
        per_user = self.users.join(hits, on="user_id", how="left", maintain_order="left").with_columns(
            pl.col("n_hits").fill_null(0), pl.col("dcg").fill_null(0.0), pl.col("new_hit").fill_null(False)
        )
        idcg = ideal[np.minimum(per_user["n_test"].to_numpy(), self.k) - 1]
        new_users = per_user.filter(pl.col("is_new_interest_user"))
        novelty = (
            top.join(self.novelty, on="item_id").sort("user_id", "rank")
            .group_by("user_id", maintain_order=True).agg(pl.col("novelty_bits").mean())
        )
        return {
            "k": self.k,
            "n_users": per_user.height,
            "ndcg": float(np.mean(per_user["dcg"].to_numpy() / idcg)) if per_user.height else None,
            "hit_rate": float((per_user["n_hits"] > 0).mean()) if per_user.height else None,
            "coverage": top["item_id"].n_unique() / self.n_items if self.n_items else None,
            "diversity": self._diversity(top),
            "novelty": novelty["novelty_bits"].mean(),
            "new_interest_hit_rate": float(new_users["new_hit"].mean()) if new_users.height else None,
            "n_new_interest_users": new_users.height,
            "exploration_share": float(top["is_exploration"].mean()) if top.height else None,
        }

    def _diversity(self, top: pl.DataFrame):
        # 1 - mean pairwise genre Jaccard per list (two genre-less items count as dissimilar;
        # items missing from staging.items are left out), averaged over lists of 2+ items;
        # vectorised: |a & b| is the dot of multi-hot rows, |a | b| = |a| + |b| - |a & b|
        known = top.join(self.known_items, on="item_id", how="semi").sort("user_id", "rank")
        if known.height == 0:
            return None
        users = known["user_id"].to_numpy()
        starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
        sizes = np.diff(np.r_[starts, users.size])
        slot = np.arange(users.size) - np.repeat(starts, sizes)
        hot = np.zeros((starts.size, int(sizes.max()), self.genre_hot.shape[1]))
        hot[np.repeat(np.arange(starts.size), sizes), slot] = self.genre_hot[
            np.searchsorted(self.item_ids_sorted, known["item_id"].to_numpy())
        ]
        inter = np.einsum("lig,ljg->lij", hot, hot)
        count = hot.sum(axis=2)
        union = count[:, :, None] + count[:, None, :] - inter
        jaccard = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        upper = np.triu(np.ones(jaccard.shape[1:], dtype=bool), 1)
        pairs = sizes * (sizes - 1) / 2
        lists = sizes >= 2
        if not lists.any():
            return None
        mean_jaccard = (jaccard * upper).sum(axis=(1, 2))[lists] / pairs[lists]
        return float(np.mean(1 - mean_jaccard))
