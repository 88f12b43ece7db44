"""Each re-ranker's setting, chosen per build on the VALIDATION split (``eval.explore_choice``).

The user states a promise per re-ranker (var rerank.explore.max_ndcg_loss,
rerank.mmr.max_ndcg_loss, rerank.calibration.max_ndcg_loss): at most that share of the
exploit list's NDCG@K may be lost. The validation users' lists are rebuilt under every
setting of a grid from the LM's candidates scored from their TRAIN events, and measured
against their VALID event; the test split is never read.

The margin for validation noise: a setting keeps its promise when the one-sided lower bound
at var rerank.promise_confidence (0.84: about one standard error below the point, the
one-standard-error rule of model selection) of its NDCG ratio to ``lm`` over a bootstrap over
users (seeded, paired: every setting is measured on the same resamples as ``lm``) is at least
``1 - max_ndcg_loss``. Of the
settings that keep it, the most acting one is chosen: for exploration the highest coverage
ratio (then novelty gain), for MMR the lowest lambda, for calibration the highest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from .explore_frames import (
    candidate_uncertainty, explore_lists, exposure_counts, history_sequences, interest_flags_of, popularity_of,
    slots_per_group,
)
from .frames import (
    Candidates, calibrated_lists, embedding_matrix, exploit_lists, genre_matrix, history_genre_mix, mmr_lists,
)
from .settings import RerankSettings

CHOICE_SCHEMA: dict[str, pl.DataType] = {
    "reranker": pl.Utf8, "segment": pl.Utf8, "setting": pl.Utf8,
    "share_scale": pl.Float64, "novelty_weight": pl.Float64, "lambda_value": pl.Float64,
    "n_users": pl.Int64, "max_ndcg_loss": pl.Float64,
    "ndcg_ratio": pl.Float64, "ndcg_ratio_bound": pl.Float64, "ndcg_ratio_low": pl.Float64,
    "ndcg_ratio_high": pl.Float64,
    "coverage_ratio": pl.Float64, "coverage_ratio_low": pl.Float64, "coverage_ratio_high": pl.Float64,
    "novelty_gain": pl.Float64, "novelty_gain_low": pl.Float64, "novelty_gain_high": pl.Float64,
    "keeps_promise": pl.Boolean, "is_chosen": pl.Boolean, "reason": pl.Utf8,
}

# the purpose label of the validation pool: it reads the holdout purpose's popularity, segments
# and interests (train + valid events, one event per user more than its train histories)
PURPOSE = "holdout"


def new_interest_flags(pairs: pl.DataFrame, interests: pl.DataFrame, items: pl.DataFrame) -> pl.DataFrame:
    """(user_id, item_id) -> is_new_interest, probed_interest: the rule of the ``new_interests``
    macro (sql/macros/interests.sql is the definition) over ``interests`` (user_id, interest,
    weight, is_top: one purpose's genre rows of features.fit_interests) and ``items`` (item_id,
    genres). An item is a new interest when none of its genres is among the user's top ones
    (and the user has top ones); it probes its genre the user weighs least."""
    interests = interests.select("user_id", pl.col("interest").alias("genre"), "weight", "is_top")
    users_with_top = interests.filter(pl.col("is_top")).select("user_id").unique().with_columns(
        pl.lit(True).alias("has_top"))
    g = (pairs.select("user_id", "item_id").unique()
         .join(items.select("item_id", pl.col("genres").alias("genre")).explode("genre").drop_nulls("genre"),
               on="item_id")
         .join(interests, on=["user_id", "genre"], how="left")
         .with_columns(pl.col("weight").fill_null(0.0), pl.col("is_top").fill_null(False)))
    per = g.group_by("user_id", "item_id").agg(
        (~pl.col("is_top").any()).alias("outside"),
        pl.col("genre").sort_by(["weight", "genre"]).first().alias("least"),
    )
    out = (pairs.join(per, on=["user_id", "item_id"], how="left", maintain_order="left")
           .join(users_with_top, on="user_id", how="left", maintain_order="left")
           .with_columns((pl.col("outside").fill_null(False) & pl.col("has_top").fill_null(False))
                         .alias("is_new_interest")))
    return out.with_columns(pl.when(pl.col("is_new_interest")).then(pl.col("least")).alias("probed_interest")) \
        .select("user_id", "item_id", "is_new_interest", "probed_interest")


def history_interests(events: pl.DataFrame, items: pl.DataFrame, *, window: int, mix: float,
                      top_n: int) -> pl.DataFrame:
    """Each user's item-interest weights from ``events`` (user_id, item_id, position), the rule
    of the ``user_interest_weights`` macro (sql/macros/interests.sql) for the item interests of
    ``items`` (item_id, genres): an event spreads a weight of 1 over its item's interests;
    long-term = that summed over the user's events / their number, short-term the same over the
    last ``window`` events, weight = mix * short + (1 - mix) * long; is_top marks the first
    ``top_n`` by weight (then name). Columns user_id, interest, weight, is_top."""
    history = events.select("user_id", "item_id", "position").with_columns(
        pl.col("position").rank("ordinal", descending=True).over("user_id").alias("recency"),
        pl.len().over("user_id").alias("n_events"))
    spread = (history.join(items.select("item_id", "genres").filter(pl.col("genres").list.len() > 0), on="item_id")
              .with_columns((1.0 / pl.col("genres").list.len()).alias("share")).explode("genres")
              .rename({"genres": "interest"}))
    weights = spread.group_by("user_id", "interest").agg(
        (pl.col("share").sum() / pl.col("n_events").first()).alias("long"),
        (pl.col("share").filter(pl.col("recency") <= window).sum()
         / pl.min_horizontal(pl.col("n_events").first(), pl.lit(window))).alias("short"),
    ).with_columns((mix * pl.col("short") + (1 - mix) * pl.col("long")).alias("weight"))
    ranked = weights.sort(["user_id", "weight", "interest"], descending=[False, True, False]).with_columns(
        (pl.int_range(pl.len()).over("user_id") < top_n).alias("is_top"))
    return ranked.select("user_id", "interest", "weight", "is_top")


def sample_users(users: np.ndarray, n: int, seed: int) -> np.ndarray:
    """At most ``n`` of ``users``, drawn without replacement by ``seed``, in ascending order."""
    users = np.unique(np.asarray(users, dtype=np.int64))
    if users.size <= n:
        return users
    return np.sort(np.random.default_rng(seed).choice(users, size=n, replace=False))


@dataclass
class ValidationPool:
    """The validation users' LM candidates (scored from their train events as recs.lm_candidates
    scores a purpose's users), their MC-dropout uncertainty, interest flags and popularity,
    and each user's valid item."""

    candidates: Candidates
    histories: pl.DataFrame
    mean: np.ndarray
    std: np.ndarray
    outside: np.ndarray
    probes: list
    popularity: np.ndarray
    targets: pl.DataFrame  # user_id, item_id: the valid event

    @classmethod
    def score(cls, lm, train: pl.DataFrame, valid: pl.DataFrame, *, n: int, passes: int, seed: int,
              interests: pl.DataFrame, items: pl.DataFrame, item_popularity: pl.DataFrame) -> ValidationPool:
        """``train`` (user_id, item_id, position): the users' histories; ``valid`` (user_id,
        item_id): their targets, one per user; ``item_popularity`` (purpose, item_id, novelty_bits)."""
        from ..score import top_k
        from ..sequences import list_histories

        users = np.sort(valid["user_id"].unique().to_numpy())
        train = train.filter(pl.col("user_id").is_in(users.tolist()))
        ids, seqs = list_histories(lm.catalogue, train["user_id"].to_numpy(), train["item_id"].to_numpy(),
                                   train["position"].to_numpy(), users, where="event_splits.item_id (train)")
        histories = train.select(pl.lit(PURPOSE).alias("purpose"), "user_id", "item_id", "position") \
            .sort("purpose", "user_id", "position")
        items_idx, scores = top_k(lm, seqs, n)
        found = np.isfinite(scores)
        rows, ranks = np.nonzero(found)
        frame = pl.DataFrame({
            "purpose": pl.Series([PURPOSE] * len(rows), dtype=pl.Utf8),
            "user_id": pl.Series(ids[rows], dtype=pl.Int64), "rank": pl.Series(ranks + 1, dtype=pl.Int32),
            "item_id": pl.Series(lm.catalogue.item_ids[items_idx[found] - 1], dtype=pl.Int64),
            "score": pl.Series(scores[found], dtype=pl.Float64)})
        candidates = Candidates.from_frame(frame, histories)
        flags = new_interest_flags(candidates.frame.select("user_id", "item_id"), interests, items) \
            .with_columns(pl.lit(PURPOSE).alias("purpose"))
        outside, probes = interest_flags_of(candidates, flags)
        # only the candidates a probe can be (recs.lm_candidate_uncertainty scores the same rows);
        # the n-gram half counts over every pool user's history, as there
        probe_rows = Candidates.from_frame(candidates.frame.filter(pl.Series(outside)))
        mean, std = np.zeros(outside.size), np.zeros(outside.size)
        if probe_rows.frame.height:
            ngram = lm.mixture.fit_ngram(history_sequences(lm, candidates.groups, histories), lm.catalogue.n_items)
            mean[outside], std[outside] = candidate_uncertainty(lm, probe_rows, histories, passes, seed,
                                                                ngrams={PURPOSE: ngram})
        popularity = popularity_of(candidates, item_popularity.filter(pl.col("purpose") == PURPOSE))
        return cls(candidates, histories, mean, std, outside, probes, popularity, valid.select("user_id", "item_id"))


class Measures:
    """Per-user NDCG@K, novelty and the shown items of lists, for a paired bootstrap over users."""

    def __init__(self, users: np.ndarray, targets: pl.DataFrame, bits: pl.DataFrame, k: int,
                 replicates: int, level: float, seed: int, confidence: float = 0.84):
        self.users = np.asarray(users, dtype=np.int64)
        self.targets = targets.select(pl.col("user_id").cast(pl.Int64), pl.col("item_id").cast(pl.Int64),
                                      pl.lit(True).alias("hit"))
        self.bits = bits.select(pl.col("item_id").cast(pl.Int64), pl.col("novelty_bits").cast(pl.Float64))
        self.k, self.level, self.confidence = k, level, confidence
        # Poisson(1) draws per user and replicate: the same resamples for every setting
        self.weights = np.random.default_rng(seed).poisson(1.0, (replicates, self.users.size)).astype(np.float64)
        self.item_codes: dict[int, int] = {}

    def of(self, lists: pl.DataFrame) -> dict:
        top = lists.filter(pl.col("rank") <= self.k).select(
            pl.col("user_id").cast(pl.Int64), pl.col("item_id").cast(pl.Int64), "rank")
        top = top.join(self.targets, on=["user_id", "item_id"], how="left").join(self.bits, on="item_id", how="left")
        user = np.searchsorted(self.users, top["user_id"].to_numpy())
        gain = np.where(top["hit"].fill_null(False).to_numpy(), 1.0 / np.log2(top["rank"].to_numpy() + 1.0), 0.0)
        n = self.users.size
        codes = np.array([self.item_codes.setdefault(i, len(self.item_codes)) for i in top["item_id"].to_list()],
                         dtype=np.int64)
        return {"ndcg": np.bincount(user, gain, n), "bits": np.bincount(user, top["novelty_bits"].fill_null(0.0)
                                                                         .to_numpy(), n),
                "slots": np.bincount(user, minlength=n).astype(np.float64), "user": user, "item": codes}

    def compare(self, m: dict, base: dict) -> dict:
        """Point estimates and intervals of the NDCG ratio, coverage ratio and novelty gain of
        ``m`` against ``base`` (both from :meth:`of`)."""
        w = self.weights
        full = np.ones(self.users.size)
        n_items = len(self.item_codes)

        def ratio_ndcg(wt):
            return _ratio(wt @ m["ndcg"], wt @ base["ndcg"])

        def gain(wt):
            return _ratio(wt @ m["bits"], wt @ m["slots"]) - _ratio(wt @ base["bits"], wt @ base["slots"])

        def coverage(weights, x):
            return np.count_nonzero(np.bincount(x["item"], weights[x["user"]], n_items) > 0)

        def ratio_coverage(wt):
            return _ratio(np.array([coverage(r, m) for r in np.atleast_2d(wt)], dtype=float),
                          np.array([coverage(r, base) for r in np.atleast_2d(wt)], dtype=float))

        out = {}
        for name, f in (("ndcg_ratio", ratio_ndcg), ("coverage_ratio", ratio_coverage), ("novelty_gain", gain)):
            point = float(np.atleast_1d(f(full))[0])
            reps = np.atleast_1d(f(w))
            reps = reps[np.isfinite(reps)]
            low, high = ((float(np.quantile(reps, (1 - self.level) / 2)), float(np.quantile(reps, 1 - (1 - self.level) / 2)))
                         if reps.size else (float("nan"), float("nan")))
            out[name], out[f"{name}_low"], out[f"{name}_high"] = point, low, high
            if name == "ndcg_ratio":
                out["ndcg_ratio_bound"] = float(np.quantile(reps, 1 - self.confidence)) if reps.size else float("nan")
        return out


def _ratio(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.asarray(b) > 0, np.asarray(a, dtype=float) / np.where(np.asarray(b) > 0, b, 1), np.nan)


def choose_setting(rows: Sequence[dict], max_ndcg_loss: float, prefer: Callable[[dict], tuple],
                   min_coverage_ratio: float | None = None) -> tuple[int | None, str]:
    """(index of the chosen row, why): of the rows whose ``ndcg_ratio_bound`` is at least
    ``1 - max_ndcg_loss``, the one ``prefer`` ranks highest; None when none keeps the promise
    (or the lm list has no validation NDCG, so no ratio can be measured)."""
    floor = 1.0 - max_ndcg_loss
    kept = [i for i, r in enumerate(rows) if np.isfinite(r["ndcg_ratio_bound"]) and r["ndcg_ratio_bound"] >= floor]
    if not kept:
        if not any(np.isfinite(r["ndcg_ratio"]) for r in rows):
            return None, "lm has no validation hit: no NDCG ratio can be measured"
        return None, f"no setting keeps the promise: every NDCG ratio's bound is below {floor:g}"
    best = max(kept, key=lambda i: prefer(rows[i]))
    r = rows[best]
    why = (f"the most acting of {len(kept)} settings of {len(rows)} whose NDCG ratio's bound is >= {floor:g} "
           f"(this one: {r['ndcg_ratio']:.3f}, bound {r['ndcg_ratio_bound']:.3f}, interval "
           f"[{r['ndcg_ratio_low']:.3f}, {r['ndcg_ratio_high']:.3f}], coverage {r['coverage_ratio']:.2f} x lm)")
    if min_coverage_ratio is not None and not r["coverage_ratio"] >= min_coverage_ratio:
        why += f"; below the coverage target {min_coverage_ratio:g} x lm: no setting within the promise reaches it"
    return best, why


def explore_grid(settings: RerankSettings) -> list[tuple[float, float]]:
    """(share scale, novelty weight) of every exploration setting searched: the served shares
    (var rerank.explore_shares and explore_default_share, the starting point) times each scale."""
    return [(float(s), float(w)) for s in settings.explore.share_scales for w in settings.explore.novelty_weights]


def scaled_shares(settings: RerankSettings, scale: float) -> tuple[dict[str, float], float]:
    return ({s: min(1.0, v * scale) for s, v in settings.explore_shares.items()},
            min(1.0, settings.explore_default_share * scale))


def choice_rows(settings: RerankSettings, pool: ValidationPool, *, items: pl.DataFrame, embeddings: pl.DataFrame,
                segments: pl.DataFrame, bits: pl.DataFrame, list_length: int, max_rank: int, k: int,
                replicates: int, level: float, seed: int, log: Callable[[str], None] = print) -> pl.DataFrame:
    """The rows of ``eval.explore_choice`` (``CHOICE_SCHEMA``): every setting of each re-ranker's
    grid measured on the validation pool, the chosen one marked, with why."""
    measures = Measures(pool.candidates.groups["user_id"].to_numpy(), pool.targets, bits, k, replicates, level, seed,
                        settings.promise_confidence)
    ranked = Candidates.from_frame(pool.candidates.frame, pool.histories, max_rank=max_rank)
    base = measures.of(exploit_lists(ranked, list_length))
    out: list[dict] = []

    def measured(reranker, setting, lists, **params):
        row = {"reranker": reranker, "segment": "all", "setting": setting, "share_scale": None,
               "novelty_weight": None, "lambda_value": None, **params, "n_users": int(measures.users.size)}
        row.update(measures.compare(measures.of(lists), base))
        return row

    def decide(reranker, rows, budget, prefer, min_coverage=None, can_act="", identity=lambda r: False):
        best, why = choose_setting(rows, budget, prefer, min_coverage)
        for i, row in enumerate(rows):
            row["max_ndcg_loss"] = budget
            row["keeps_promise"] = bool(np.isfinite(row["ndcg_ratio_bound"]) and row["ndcg_ratio_bound"] >= 1 - budget)
            row["is_chosen"] = i == best
            row["reason"] = why if i == best else None
        if best is None:
            log(f"warning: {reranker} cannot act: {why}{can_act}; it serves the lm list")
            rows.append({**{c: None for c in CHOICE_SCHEMA}, "reranker": reranker, "segment": "all",
                         "setting": "off", "n_users": int(measures.users.size), "max_ndcg_loss": budget,
                         "keeps_promise": True, "is_chosen": True, "reason": why})
        else:
            log(f"{reranker}: chose {rows[best]['setting']} on {measures.users.size} validation users: {why}")
            if identity(rows[best]):
                log(f"warning: {reranker} cannot act: only its setting {rows[best]['setting']}, the lm order, keeps "
                    f"the promise (max_ndcg_loss {budget:g}){can_act}; it serves the lm list")
        out.extend(rows)
        return None if best is None else rows[best]

    # exploration: the served share profile scaled, times the novelty weights
    groups = pool.candidates.groups
    rows = []
    n_probes = int(pool.outside.sum())
    for scale, weight in explore_grid(settings):
        shares, default = scaled_shares(settings, scale)
        slots = slots_per_group(groups, segments, shares, list_length, default, candidates=pool.candidates, seed=seed)
        options = {**settings.explore_options(), "novelty_weight": weight}
        # as the served lists: the items every list's exploit slots show are counted first
        counts: dict = {}
        if settings.explore_repeat_shown and settings.explore_repeat_penalty > 0:
            exposure_counts(pool.candidates, slots, list_length, counts)
        lists = explore_lists(pool.candidates, pool.mean, pool.std, pool.outside, pool.probes, slots, list_length,
                              seed=seed, popularity=pool.popularity, probe_counts=counts, **options)
        rows.append(measured("lm_explore", f"scale={scale:g} w={weight:g}", lists, share_scale=scale,
                             novelty_weight=weight))
    decide("lm_explore", rows, settings.explore.max_ndcg_loss,
           lambda r: (r["coverage_ratio"], r["novelty_gain"], -r["share_scale"]), settings.explore.min_coverage_ratio,
           "" if n_probes else " (no candidate is a new interest for its user: items carry no interests)",
           identity=lambda r: r["share_scale"] == 0 or (r["ndcg_ratio"] == 1.0 and r["coverage_ratio"] == 1.0))

    vectors = embedding_matrix(ranked.item_ids(), embeddings)
    rows = [measured("lm_mmr", f"lambda={lam:g}", mmr_lists(ranked, vectors, list_length, lam), lambda_value=lam)
            for lam in settings.tradeoff_mmr_lambdas]
    decide("lm_mmr", rows, settings.mmr.max_ndcg_loss, lambda r: (-r["lambda_value"],),
           identity=lambda r: r["lambda_value"] >= 1.0)

    item_genres, names = genre_matrix(ranked.item_ids(), items)
    mixes = history_genre_mix(ranked.groups, pool.histories, items)
    rows = [measured("lm_calibrated", f"lambda={lam:g}",
                     calibrated_lists(ranked, item_genres, mixes, list_length, lam), lambda_value=lam)
            for lam in settings.tradeoff_calibration_lambdas]
    decide("lm_calibrated", rows, settings.calibration.max_ndcg_loss, lambda r: (r["lambda_value"],),
           can_act="" if names else " (items carry no interests to calibrate on)", identity=lambda r: r["lambda_value"] <= 0.0)
    return pl.DataFrame(out, schema=CHOICE_SCHEMA)


def chosen_settings(settings: RerankSettings, choice: pl.DataFrame) -> RerankSettings:
    """``settings`` with each re-ranker's setting chosen in ``choice`` (eval.explore_choice rows)
    in place of the hand-set one; unchanged when var rerank.choose_on_validation is false or
    the table has no chosen row (then the hand-set settings serve). A re-ranker that cannot act
    (setting 'off') serves the lm list: share 0, MMR lambda 1, calibration lambda 0."""
    if not settings.choose_on_validation or choice.height == 0:
        return settings
    chosen = {r["reranker"]: r for r in choice.filter(pl.col("is_chosen") & (pl.col("segment") == "all"))
              .iter_rows(named=True)}
    values: dict = {}
    if "lm_explore" in chosen:
        r = chosen["lm_explore"]
        scale = r["share_scale"] if r["share_scale"] is not None else 0.0
        shares, default = scaled_shares(settings, scale)
        values.update(explore_shares=shares, explore_default_share=default)
        if r["novelty_weight"] is not None:
            values["explore_novelty_weight"] = r["novelty_weight"]
    if "lm_mmr" in chosen:
        values["mmr_lambda"] = chosen["lm_mmr"]["lambda_value"] if chosen["lm_mmr"]["lambda_value"] is not None else 1.0
    if "lm_calibrated" in chosen:
        r = chosen["lm_calibrated"]
        values["calibration_lambda"] = r["lambda_value"] if r["lambda_value"] is not None else 0.0
    return settings.replace(**values)

