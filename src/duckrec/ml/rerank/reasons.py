"""Reasons of exploit slots: "like <title>", the history item closest to a recommendation."""

from __future__ import annotations

import numpy as np
import polars as pl

from .batching import _check_offsets, _unit_rows, group_offsets
from .frames import aligned_offsets, item_lookup


def most_similar_rows(
    candidate_offsets: np.ndarray,
    candidate_vectors: np.ndarray,
    reference_offsets: np.ndarray,
    reference_vectors: np.ndarray,
) -> np.ndarray:
    """For each candidate row, the reference row of its group with the highest cosine.

    Typically the references are the user's history items, so the answer names the
    history item a recommendation "is like". Groups must line up (same count, same order);
    candidates of a group with no references get -1.
    """
    cand_offsets = _check_offsets(candidate_offsets, len(candidate_vectors))
    ref_offsets = _check_offsets(reference_offsets, len(reference_vectors))
    if cand_offsets.size != ref_offsets.size:
        raise ValueError(
            f"most_similar_rows: expected the same groups for candidates and references, found "
            f"{cand_offsets.size - 1} candidate groups and {ref_offsets.size - 1} reference groups"
        )
    cand = _unit_rows(np.asarray(candidate_vectors, dtype=np.float64))
    ref = _unit_rows(np.asarray(reference_vectors, dtype=np.float64))
    if cand.shape[1] != ref.shape[1]:
        raise ValueError(
            f"most_similar_rows: candidate vectors have {cand.shape[1]} dimensions but reference "
            f"vectors have {ref.shape[1]}"
        )
    cand_rows = np.arange(cand.shape[0])
    ref_rows = np.arange(ref.shape[0])
    return _nearest_rows(cand_offsets, cand_rows, cand, ref_offsets, ref_rows, ref)


def _nearest_rows(cand_offsets, cand_rows, cand_unit, ref_offsets, ref_rows, ref_unit) -> np.ndarray:
    """Per candidate row (``cand_unit[cand_rows[j]]``), the reference row of its group with
    the highest dot product (first on ties), or -1. Vectors are gathered group by group, so
    no (rows x d) copy of a long table is made, and the small products run on one torch
    thread: numpy's BLAS would use two, which stall whenever another process holds a core."""
    import torch

    from ..score import torch_threads

    cand_t, ref_t = torch.from_numpy(cand_unit), torch.from_numpy(ref_unit)
    out = np.full(cand_rows.size, -1, dtype=np.int64)
    with torch_threads(1), torch.no_grad():
        for g in range(cand_offsets.size - 1):
            c0, c1 = int(cand_offsets[g]), int(cand_offsets[g + 1])
            r0, r1 = int(ref_offsets[g]), int(ref_offsets[g + 1])
            if c1 > c0 and r1 > r0:
                c = cand_t[torch.from_numpy(cand_rows[c0:c1])]
                r = ref_t[torch.from_numpy(ref_rows[r0:r1])]
                out[c0:c1] = r0 + (c @ r.T).numpy().argmax(axis=1)
    return out


def reason_vectors(embeddings: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``ml.item_embeddings`` (item_id, embedding) as :func:`like_reasons` uses them: the item
    ids and their unit vectors after a zero row 0 (unknown items, similar to nothing). A
    caller that builds reasons block by block makes them once."""
    if embeddings.height:
        table_ids = embeddings["item_id"].cast(pl.Int64).to_numpy()
        unit = np.vstack([np.zeros((1, len(embeddings["embedding"][0]))),
                          _unit_rows(np.asarray(embeddings["embedding"].to_list(), dtype=np.float64))])
        return table_ids, unit
    return np.zeros(0, dtype=np.int64), np.zeros((1, 1))


def like_reasons(lists: pl.DataFrame, histories: pl.DataFrame, embeddings: pl.DataFrame | tuple,
                 items: pl.DataFrame) -> pl.DataFrame:
    """Fills the empty ``reason`` of list rows with "like <title>": the user's history item
    (of the list's purpose) whose embedding is closest to the recommended item's.
    ``embeddings`` is ``ml.item_embeddings`` or :func:`reason_vectors` of it."""
    lists = lists.with_row_index("_order")
    todo = lists.filter(pl.col("reason").is_null()).sort("purpose", "user_id", "rank")
    if todo.height == 0:
        return lists.drop("_order")
    offsets = group_offsets(todo["purpose"].to_numpy(), todo["user_id"].to_numpy())
    groups = todo.select("purpose", "user_id").gather(offsets[:-1])
    history, history_offsets = aligned_offsets(groups, histories)
    history_items = history["item_id"].to_numpy()
    # unit vectors per embedded item (row 0: unknown items, zero, similar to nothing)
    table_ids, unit = embeddings if isinstance(embeddings, tuple) else reason_vectors(embeddings)
    row_of = lambda ids: item_lookup(ids, table_ids, np.arange(1, table_ids.size + 1))  # noqa: E731
    nearest = _nearest_rows(
        offsets, row_of(todo["item_id"].to_numpy()), unit, history_offsets, row_of(history_items), unit
    )
    titles = dict(zip(items["item_id"].cast(pl.Int64).to_list(), items["title"].to_list()))
    filled = [
        f"like {titles.get(int(history_items[n])) or f'item {int(history_items[n])}'}" if n >= 0 else "popular now"
        for n in nearest.tolist()
    ]
    done = todo.select("_order").with_columns(pl.Series("_filled", filled, dtype=pl.Utf8))
    return (
        lists.join(done, on="_order", how="left")
        .sort("_order")
        .with_columns(pl.coalesce("reason", "_filled").alias("reason"))
        .drop("_order", "_filled")
    )
