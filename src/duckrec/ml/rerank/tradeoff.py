"""The grid of ``eval.tradeoff_lists``: one purpose's lists under every setting of the re-rankers.

For each setting of var rerank.tradeoff_* (MMR lambdas, calibration lambdas, exploration
shares) the lists of lm_mmr, lm_calibrated and lm_explore are rebuilt from the LM's
candidates (and, for lm_explore, their MC-dropout uncertainty) with the code of the served
lists, without retraining or rescoring; the `lm` setting is the unre-ranked exploit list
and ``is_default`` marks the settings the served lists use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import polars as pl

from .explore_frames import (
    explore_lists, exposure_counts, interest_flags_of, popularity_of, slots_by_user, slots_of, uncertainty_of,
)
from .exploration import exploration_slots
from .frames import (
    Candidates, calibrated_lists, embedding_matrix, exploit_lists, genre_matrix, history_genre_mix, mmr_lists,
    purpose_histories,
)
from .settings import RerankSettings

TRADEOFF_SCHEMA: dict[str, pl.DataType] = {
    "strategy": pl.Utf8, "parameter": pl.Utf8, "value": pl.Float64, "setting": pl.Utf8, "is_default": pl.Boolean,
    "user_id": pl.Int64, "rank": pl.Int32, "item_id": pl.Int64, "is_exploration": pl.Boolean,
}


def tradeoff_setting_count(settings: RerankSettings) -> int:
    """How many settings :func:`tradeoff_lists` builds: the exploit list, every MMR and
    calibration lambda, every exploration share, and exploration by segment."""
    return 1 + sum(map(len, (settings.tradeoff_mmr_lambdas, settings.tradeoff_calibration_lambdas,
                             settings.tradeoff_explore_shares))) + 1


def tradeoff_lists(
    settings: RerankSettings,
    *,
    candidates: pl.DataFrame,
    fit_events: pl.DataFrame,
    items: pl.DataFrame,
    embeddings: pl.DataFrame,
    uncertainty: pl.DataFrame,
    interests: pl.DataFrame,
    item_popularity: pl.DataFrame,
    segments: pl.DataFrame,
    list_length: int,
    max_rank: int,
    seed: int,
    progress: Callable[[int, int, str], None] | None = None,
    probe_counts: dict | None = None,
    segment_slots: Mapping[tuple[str, int], int] | None = None,
) -> pl.DataFrame:
    """The lists of every setting of the grid, in ``TRADEOFF_SCHEMA``, kept to rank
    ``settings.tradeoff_k``.

    The frames are one purpose's rows of the tables the served lists read:
    ``recs.lm_candidates``, ``ml.fit_events``, ``staging.items``, ``ml.item_embeddings``,
    ``recs.lm_candidate_uncertainty``, ``recs.lm_candidate_interests``,
    ``features.item_popularity`` and ``features.user_rfm_by_purpose``. Lists are built at
    ``list_length`` as the served lists are; exploration reads the whole candidate pool
    (var rerank.explore_candidates), the other re-rankers its first ``max_rank`` (var
    lm.candidates). ``progress(done, total, last)`` is called after each setting.

    A caller that goes through the users in blocks passes one ``probe_counts`` dict to
    every block's call, filled by :func:`tradeoff_exposure` over all blocks first: each
    exploration setting's repeat counts then run on from block to block, as in one call; and
    the same ``segment_slots`` (:func:`slots_by_user` over all users) to every block's call
    and to :func:`tradeoff_exposure`, so the served shares split over the users as in one call.
    """
    k = settings.tradeoff_k
    histories = purpose_histories(fit_events)
    explore_candidates = Candidates.from_frame(candidates, histories)
    ranked_candidates = Candidates.from_frame(candidates, histories, max_rank=max_rank)
    frames = []
    n_settings = tradeoff_setting_count(settings)

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
        if progress is not None:
            progress(len(frames), n_settings, f"{strategy} {setting}")

    add("lm", None, None, exploit_lists(ranked_candidates, list_length), True)

    vectors = embedding_matrix(ranked_candidates.item_ids(), embeddings)
    for lam in settings.tradeoff_mmr_lambdas:
        add("lm_mmr", "lambda", lam, mmr_lists(ranked_candidates, vectors, list_length, lam),
            lam == settings.mmr_lambda)

    item_genres, _ = genre_matrix(ranked_candidates.item_ids(), items)
    target_mixes = history_genre_mix(ranked_candidates.groups, histories, items)
    for lam in settings.tradeoff_calibration_lambdas:
        add("lm_calibrated", "lambda", lam,
            calibrated_lists(ranked_candidates, item_genres, target_mixes, list_length, lam),
            lam == settings.calibration_lambda)

    outside, probes = interest_flags_of(explore_candidates, interests)
    mean, std = uncertainty_of(explore_candidates, uncertainty, needed=outside)
    popularity = popularity_of(explore_candidates, item_popularity)

    def explore(label, slots):
        counts = None if probe_counts is None else probe_counts.setdefault(label, {})
        return explore_lists(explore_candidates, mean, std, outside, probes, slots, list_length, seed=seed,
                             popularity=popularity, probe_counts=counts, **settings.explore_options())

    for label, share, slots in _explore_settings(settings, explore_candidates, segments, list_length, seed, segment_slots):
        add("lm_explore", "share", share, explore(label, slots), share is None)
    return pl.concat(frames).cast(TRADEOFF_SCHEMA)


def _explore_settings(settings: RerankSettings, candidates: Candidates, segments: pl.DataFrame, list_length: int,
                      seed: int, segment_slots: Mapping[tuple[str, int], int] | None = None):
    """(label, share, slots per group) of every exploration setting of the grid: each
    uniform share, then the served shares by segment (share None), split over the users as
    recs.lm_explore_lists splits them (``segment_slots``: :func:`slots_by_user` over all
    users, for a caller that goes block by block; None: over ``candidates``' users)."""
    for share in settings.tradeoff_explore_shares:
        yield f"share={share:g}", share, exploration_slots(None, {}, list_length, default_share=share)
    if segment_slots is None:
        segment_slots = slots_by_user(candidates, segments, settings.explore_shares, list_length,
                                      settings.explore_default_share, seed=seed)
    yield "share=segments", None, slots_of(candidates.groups, segment_slots)


def tradeoff_exposure(settings: RerankSettings, *, candidates: pl.DataFrame, fit_events: pl.DataFrame,
                      segments: pl.DataFrame, list_length: int, probe_counts: dict, seed: int = 0,
                      segment_slots: Mapping[tuple[str, int], int] | None = None) -> dict:
    """Adds one block's exploit exposure (:func:`exposure_counts`) to every exploration
    setting's counts in ``probe_counts``: the first pass of a caller that builds
    :func:`tradeoff_lists` block by block. Does nothing unless the settings count shown items."""
    if not (settings.explore_repeat_shown and settings.explore_repeat_penalty > 0):
        return probe_counts
    table = Candidates.from_frame(candidates, purpose_histories(fit_events))
    for label, _, slots in _explore_settings(settings, table, segments, list_length, seed, segment_slots):
        exposure_counts(table, slots, list_length, probe_counts.setdefault(label, {}))
    return probe_counts
