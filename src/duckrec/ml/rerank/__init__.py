"""Re-ranking of a user's language-model candidates: MMR, calibration, exploration.

Every function works on one user's top-N candidates (the LM's item scores, in the LM's
candidate order) and returns an *order*: positions into those candidates, best first.
The ``*_batch`` functions do the same for many users at once over a long table of
candidates laid out group after group (``offsets[g]:offsets[g + 1]`` are group g's rows),
and return flat row numbers into that table, so a caller can take its own columns along.

Ties always break by candidate order, so a re-ranker that is switched off (MMR with
``lam=1``, calibration with ``lam=0``, exploration with no slots) gives back exactly the
score order, stably sorted.

The package's modules: ``batching`` (ranked rows, score order, group offsets, the
padded-chunk batching and the array checks every re-ranker shares), ``diversity`` (MMR),
``calibration``, ``exploration`` (with propensities), ``reasons`` ("like <title>") and
``settings`` (``RerankSettings``), ``choice`` (each re-ranker's setting chosen on validation per build). ``frames`` and ``explore_frames`` lift all of this to
polars frames of the warehouse's tables (``Candidates``, ``*_lists``, MC-dropout
uncertainty), so the Python models that build ``recs.lm_*_lists`` and ``eval.tradeoff_lists``
stay a few lines and share one code path; ``tradeoff`` builds the settings grid of
``eval.tradeoff_lists`` from them. Import from the package (``from duckrec.ml import
rerank``): the names below are its public API.
"""

from __future__ import annotations

from .batching import ItemRows, RankedRows, group_offsets, minmax, score_order, score_order_batch
from .diversity import mmr, mmr_batch
from .calibration import CALIBRATION_ALPHA, calibrate, calibrate_batch, genre_distribution
from .exploration import (
    ExploreRule, Placement, exploration_positions, exploration_reason, exploration_slots, explore,
    explore_batch, explore_with_propensity,
)
from .settings import Promise, RerankSettings
from .frames import (
    EXPLORE_LIST_SCHEMA, LIST_SCHEMA, Candidates, aligned_offsets, calibrated_lists, cut_lists,
    embedding_matrix, exploit_lists, genre_matrix, history_genre_mix, item_lookup, list_lengths,
    lists_frame, mmr_lists, purpose_histories,
)
from .explore_frames import (
    UNCERTAINTY_SCHEMA, candidate_uncertainty, explore_lists, exposure_counts, history_sequences, interest_flags_of, popularity_of,
    slots_by_user, slots_of, slots_per_group, uncertainty_frame, uncertainty_of,
)
from .blocks import BLOCK_ROWS, Block, user_blocks
from .reasons import like_reasons, most_similar_rows, reason_vectors
from .choice import (
    CHOICE_SCHEMA, ValidationPool, choice_rows, choose_setting, chosen_settings, history_interests, sample_users,
)
from .tradeoff import TRADEOFF_SCHEMA, tradeoff_exposure, tradeoff_lists, tradeoff_setting_count

__all__ = [
    "CHOICE_SCHEMA",
    "choice_rows",
    "choose_setting",
    "chosen_settings",
    "history_interests",
    "Promise",
    "sample_users",
    "ValidationPool",
    "Block",
    "BLOCK_ROWS",
    "history_sequences",
    "reason_vectors",
    "exposure_counts",
    "user_blocks",
    "aligned_offsets",
    "calibrate",
    "calibrate_batch",
    "calibrated_lists",
    "candidate_uncertainty",
    "Candidates",
    "cut_lists",
    "embedding_matrix",
    "exploit_lists",
    "exploration_positions",
    "exploration_reason",
    "exploration_slots",
    "explore",
    "explore_batch",
    "explore_with_propensity",
    "EXPLORE_LIST_SCHEMA",
    "explore_lists",
    "ExploreRule",
    "genre_distribution",
    "genre_matrix",
    "group_offsets",
    "history_genre_mix",
    "interest_flags_of",
    "item_lookup",
    "like_reasons",
    "list_lengths",
    "LIST_SCHEMA",
    "lists_frame",
    "minmax",
    "mmr",
    "mmr_batch",
    "mmr_lists",
    "most_similar_rows",
    "Placement",
    "popularity_of",
    "purpose_histories",
    "ItemRows",
    "RankedRows",
    "RerankSettings",
    "score_order",
    "score_order_batch",
    "slots_by_user",
    "slots_of",
    "slots_per_group",
    "tradeoff_exposure",
    "tradeoff_lists",
    "tradeoff_setting_count",
    "TRADEOFF_SCHEMA",
    "uncertainty_frame",
    "uncertainty_of",
    "UNCERTAINTY_SCHEMA",
]
