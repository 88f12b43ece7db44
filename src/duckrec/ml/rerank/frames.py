"""The re-rankers over the warehouse's long tables, as polars frames.

The Python models pass their refs in as polars frames and get list rows back; everything
between (sorting, group offsets, item lookups, reasons) lives in this package so that each
model stays a few lines and the tradeoff table re-uses exactly the code of the served lists.
This module holds the candidates, the list columns and the exploit, MMR and calibrated lists;
:mod:`.explore_frames` the exploration lists and their inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from .batching import ItemRows, RankedRows, group_offsets, score_order_batch
from .calibration import calibrate_batch, genre_distribution
from .diversity import mmr_batch


LIST_SCHEMA: dict[str, pl.DataType] = {
    "purpose": pl.Utf8,
    "strategy": pl.Utf8,
    "user_id": pl.Int64,
    "rank": pl.Int32,
    "item_id": pl.Int64,
    "score": pl.Float64,
    "is_exploration": pl.Boolean,
    "reason": pl.Utf8,
}


# lm_explore_lists: the list columns plus the genre each exploration slot probes and the
# probability with which the policy chose the slot's item (1.0 on exploit slots)
EXPLORE_LIST_SCHEMA: dict[str, pl.DataType] = {
    **{name: dtype for name, dtype in LIST_SCHEMA.items() if name != "reason"},
    "probed_interest": pl.Utf8,
    "propensity": pl.Float64,
    "reason": pl.Utf8,
}


@dataclass(frozen=True)
class Candidates:
    """The LM's candidates sorted by (purpose, user_id, rank), with group offsets.

    ``frame`` has at least purpose, user_id, rank, item_id, score; a group is one
    (purpose, user) pair and ``groups`` lists them in order.
    """

    frame: pl.DataFrame
    offsets: np.ndarray
    groups: pl.DataFrame

    @classmethod
    def from_frame(cls, candidates: pl.DataFrame, histories: pl.DataFrame | None = None,
                   max_rank: int | None = None) -> Candidates:
        """Sorts the candidates; drops rows without an item or a finite score (the LM pads
        short lists with them), repeats of an item and, given ``histories`` (purpose, user_id,
        item_id), items the user already has, so no list can show them. ``max_rank`` keeps
        only the LM's first ``max_rank`` candidates of each user (the re-rankers other than
        exploration read var lm.candidates of a pool that exploration makes larger)."""
        required = {"purpose", "user_id", "rank", "item_id", "score"}
        missing = sorted(required - set(candidates.columns))
        if missing:
            raise ValueError(
                f"Candidates: expected columns {sorted(required)}, found {candidates.columns} (missing {missing})"
            )
        if max_rank is not None:
            candidates = candidates.filter(pl.col("rank") <= max_rank)
        frame = candidates.filter(
            pl.col("item_id").is_not_null() & pl.col("score").cast(pl.Float64).is_finite()
        ).sort("purpose", "user_id", "rank", "item_id").unique(
            ["purpose", "user_id", "item_id"], keep="first", maintain_order=True
        )
        if histories is not None:
            seen = histories.select("purpose", "user_id", "item_id").unique()
            frame = frame.join(seen, on=["purpose", "user_id", "item_id"], how="anti", maintain_order="left")
        frame = frame.with_columns(pl.col("user_id").cast(pl.Int64), pl.col("item_id").cast(pl.Int64))
        offsets = group_offsets(frame["purpose"].to_numpy(), frame["user_id"].to_numpy())
        groups = frame.select("purpose", "user_id").gather(offsets[:-1])
        return cls(frame, offsets, groups)

    def item_ids(self) -> np.ndarray:
        return self.frame["item_id"].to_numpy()


def item_lookup(item_ids: np.ndarray, table_ids: np.ndarray, table_values: np.ndarray) -> np.ndarray:
    """Rows of ``table_values`` for ``item_ids`` (``table_ids`` their keys); zeros for unknown ids."""
    table_ids = np.asarray(table_ids, dtype=np.int64)
    values = np.asarray(table_values)
    if values.shape[0] != table_ids.size:
        raise ValueError(
            f"item_lookup: expected one value row per table id ({table_ids.size}), found {values.shape[0]}"
        )
    if table_ids.size == 0:
        return np.zeros((np.size(item_ids), *values.shape[1:]), dtype=values.dtype)
    order = np.argsort(table_ids, kind="stable")
    sorted_ids = table_ids[order]
    ids = np.asarray(item_ids, dtype=np.int64)
    pos = np.minimum(np.searchsorted(sorted_ids, ids), sorted_ids.size - 1)
    found = sorted_ids[pos] == ids
    out = values[order[pos]]  # one gather; the rows of unknown ids are zeroed after
    out[~found] = 0
    return out


def embedding_matrix(item_ids: np.ndarray, embeddings: pl.DataFrame) -> ItemRows:
    """Item vectors from ``ml.item_embeddings`` (item_id, embedding) for ``item_ids``; zeros if
    unknown. One vector per distinct item (:class:`ItemRows`), not one per row."""
    distinct, index = np.unique(np.asarray(item_ids, dtype=np.int64), return_inverse=True)
    if embeddings.height == 0:
        return ItemRows(np.zeros((distinct.size, 1)), index)
    vectors = np.asarray(embeddings["embedding"].to_list(), dtype=np.float64)
    return ItemRows(item_lookup(distinct, embeddings["item_id"].to_numpy(), vectors), index)


def genre_matrix(item_ids: np.ndarray, items: pl.DataFrame) -> tuple[ItemRows, list[str]]:
    """Multi-hot genres of ``item_ids`` from ``staging.items`` (item_id, genres) and the genre
    names; one row per distinct item (:class:`ItemRows`), not one per id given."""
    exploded = items.select("item_id", "genres").explode("genres").drop_nulls("genres")
    names = sorted(exploded["genres"].unique().to_list())
    column = {name: i for i, name in enumerate(names)}
    table_ids = items["item_id"].to_numpy()
    row_of = {int(item): row for row, item in enumerate(table_ids)}
    table = np.zeros((table_ids.size, len(names)))
    rows = [row_of[int(i)] for i in exploded["item_id"].to_list()]
    cols = [column[g] for g in exploded["genres"].to_list()]
    table[rows, cols] = 1.0
    distinct, index = np.unique(np.asarray(item_ids, dtype=np.int64), return_inverse=True)
    return ItemRows(item_lookup(distinct, table_ids, table), index), names


def purpose_histories(fit_events: pl.DataFrame) -> pl.DataFrame:
    """(purpose, user_id, item_id, position) sorted: what each purpose's lists start from."""
    return fit_events.select(
        "purpose", pl.col("user_id").cast(pl.Int64), pl.col("item_id").cast(pl.Int64), "position"
    ).sort("purpose", "user_id", "position", "item_id")


def aligned_offsets(groups: pl.DataFrame, rows: pl.DataFrame) -> tuple[pl.DataFrame, np.ndarray]:
    """``rows`` of the same (purpose, user_id) groups, reordered to follow ``groups`` (a group's
    rows keep their order in ``rows``), with offsets (empty runs for groups without rows);
    rows of other groups are dropped."""
    keyed = groups.select("purpose", "user_id").with_row_index("_group")
    # a join promises no row order: the explicit (group, row) sort is what aligns the rows
    joined = (
        rows.with_row_index("_row")
        .join(keyed, on=["purpose", "user_id"], how="inner")
        .sort("_group", "_row")
    )
    counts = np.bincount(joined["_group"].to_numpy(), minlength=groups.height)
    return joined.drop("_group", "_row"), np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def lists_frame(candidates: Candidates, ranked: RankedRows, strategy: str, reasons: Sequence | None = None) -> pl.DataFrame:
    """The list columns (``LIST_SCHEMA``) of the ``ranked`` candidate rows."""
    picked = candidates.frame[ranked.rows]
    return pl.DataFrame(
        {
            "purpose": picked["purpose"],
            "strategy": pl.Series([strategy] * ranked.rows.size, dtype=pl.Utf8),
            "user_id": picked["user_id"],
            "rank": ranked.rank,
            "item_id": picked["item_id"],
            "score": picked["score"],
            "is_exploration": ranked.is_exploration,
            "reason": pl.Series(reasons if reasons is not None else [None] * ranked.rows.size, dtype=pl.Utf8),
        },
        schema=LIST_SCHEMA,
    )


def exploit_lists(candidates: Candidates, k: int, strategy: str = "lm") -> pl.DataFrame:
    """The LM's own order, cut at ``k``: the point every re-ranker is measured against."""
    ranked = score_order_batch(candidates.offsets, candidates.frame["score"].to_numpy(), k)
    return lists_frame(candidates, ranked, strategy)


def mmr_lists(candidates: Candidates, item_vectors: np.ndarray, k: int, lam: float, strategy: str = "lm_mmr") -> pl.DataFrame:
    """:func:`mmr` lists for every (purpose, user); ``item_vectors`` aligned with the candidate rows."""
    ranked = mmr_batch(candidates.offsets, candidates.frame["score"].to_numpy(), item_vectors, k, lam)
    return lists_frame(candidates, ranked, strategy)


def history_genre_mix(groups: pl.DataFrame, histories: pl.DataFrame, items: pl.DataFrame) -> np.ndarray:
    """Each group's history genre distribution (Steck's p(g|u)): the mean over its history
    items of the item's genres normalised to sum 1; columns in ``genre_matrix`` order."""
    rows, offsets = aligned_offsets(groups, histories)
    genres, _ = genre_matrix(rows["item_id"].to_numpy(), items)
    item_dist = genre_distribution(genres)
    sums = np.add.reduceat(np.vstack([item_dist, np.zeros((1, item_dist.shape[1]))]), offsets[:-1], axis=0)
    sums[offsets[:-1] == offsets[1:]] = 0.0  # reduceat repeats a row for an empty run
    return genre_distribution(sums)


def calibrated_lists(
    candidates: Candidates,
    item_genres: np.ndarray,
    target_mixes: np.ndarray,
    k: int,
    lam: float,
    strategy: str = "lm_calibrated",
) -> pl.DataFrame:
    """:func:`calibrate` lists for every (purpose, user); ``target_mixes`` one row per group."""
    ranked = calibrate_batch(
        candidates.offsets, candidates.frame["score"].to_numpy(), item_genres, target_mixes, k, lam
    )
    return lists_frame(candidates, ranked, strategy)


def list_lengths(k: int, ks: Sequence[int]) -> dict[str, int]:
    """How long each purpose's lists are: 'served' ``k`` (var k), 'holdout' ``max(ks)`` (every
    K measured gets a full list); the SQL lists use the same rule (list_length, sql/macros/lists.sql)."""
    if not list(ks):
        raise ValueError("list_lengths: expected at least one K in var ks, found none")
    lengths = {"served": k, "holdout": max(ks)}
    for purpose, (var, length) in zip(lengths, (("k", k), ("ks", max(ks)))):
        if not isinstance(length, (int, np.integer)) or isinstance(length, bool) or length < 1:
            raise ValueError(f"list length of the {purpose} lists: expected var {var} to give an integer >= 1, "
                             f"found {length!r}")
    return {purpose: int(length) for purpose, length in lengths.items()}


def cut_lists(lists: pl.DataFrame, lengths: Mapping[str, int]) -> pl.DataFrame:
    """``lists`` (purpose, rank, ...) cut to their purpose's length; purposes not in
    ``lengths`` keep every row."""
    limit = pl.col("purpose").replace_strict(
        {p: int(n) for p, n in lengths.items()}, default=None, return_dtype=pl.Int64
    )
    return lists.filter(limit.is_null() | (pl.col("rank") <= limit))


def _per_candidate(candidates: Candidates, frame: pl.DataFrame, columns: Mapping[str, pl.DataType],
                   required: Sequence[str], table: str, caller: str) -> pl.DataFrame:
    """``columns`` of ``frame`` (a per-candidate table keyed by purpose, user_id, item_id)
    for every candidate row, in candidate order. A candidate without a value in ``required``
    means ``table`` is older than ``recs.lm_candidates``: an error, never a silent default."""
    keys = ["purpose", "user_id", "item_id"]
    values = frame.select(
        "purpose", pl.col("user_id").cast(pl.Int64), pl.col("item_id").cast(pl.Int64),
        *[pl.col(name).cast(dtype) for name, dtype in columns.items()],
    ).unique(keys, keep="first")
    joined = candidates.frame.select(keys).join(values, on=keys, how="left", maintain_order="left")
    missing = joined.filter(pl.any_horizontal([pl.col(name).is_null() for name in required]))
    if missing.height:
        example = missing.row(0)
        raise ValueError(
            f"{caller}: {missing.height} of {joined.height} candidates have no {'/'.join(required)} in "
            f"{table} (e.g. purpose {example[0]!r}, user {example[1]}, item {example[2]}); "
            f"rebuild it after lm_candidates"
        )
    return joined
