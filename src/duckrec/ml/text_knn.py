"""text_knn: items whose text is close to a user's recent history, over item text embeddings.

A user's profile is the recency-weighted mean of the embeddings of their last
``history_events`` events (the newest weighs 1, one ``half_life`` events back 1/2, ...); an
item's score is its cosine to the profile (the embeddings are unit vectors, the profile is
normalised). Every item of the user's history is excluded, not only the recent ones. Scores are
rounded to 6 places (a matrix product's last bits depend on the threads) and ties go to the
more popular item, then the smaller id. The reason is the recent history item closest to the
candidate.

Users are scored a block at a time: a block holds ``block_users`` x items floats, so memory
does not grow with users x items.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import polars as pl

SCHEMA = {"user_id": pl.Int64, "item_id": pl.Int64, "score": pl.Float64, "source_rank": pl.Int64,
          "closest_history_item": pl.Int64}


def recency_weights(ages: np.ndarray, half_life: float) -> np.ndarray:
    """Weight of an event `age` events before the user's newest (age 0 weighs 1)."""
    return np.power(0.5, np.asarray(ages, dtype=np.float64) / float(half_life))


def text_knn_candidates(history: pl.DataFrame, item_ids: np.ndarray, vectors: np.ndarray,
                        popularity_rank: np.ndarray, length: int, *, history_events: int = 20,
                        half_life: float = 5.0, block_users: int = 1024,
                        progress=None) -> Iterator[pl.DataFrame]:
    """Frames of SCHEMA: at most `length` candidates per user of `history` (user_id, item_id,
    position: every event the user's list must exclude, position orders them), best first.

    `item_ids` [n] and `vectors` [n, d] (unit rows) are the items with an embedding, the only
    ones ranked; `popularity_rank` [n] breaks ties (smaller is more popular). Users none of
    whose recent items has an embedding get no candidates."""
    if length < 1 or history_events < 1 or half_life <= 0 or block_users < 1:
        raise ValueError(f"text_knn: expected length, history_events, block_users >= 1 and half_life > 0, found "
                         f"{length}, {history_events}, {block_users}, {half_life}")
    item_ids = np.asarray(item_ids, dtype=np.int64)
    order = np.argsort(item_ids, kind="stable")
    item_ids, vectors = item_ids[order], np.ascontiguousarray(np.asarray(vectors, dtype=np.float32)[order])
    popularity_rank = np.asarray(popularity_rank, dtype=np.int64)[order]
    if history.is_empty() or not len(item_ids):
        return
    hist = history.select(pl.col("user_id").cast(pl.Int64), pl.col("item_id").cast(pl.Int64),
                          pl.col("position").cast(pl.Int64))
    hist = hist.with_columns(pl.Series("index", _index_of(item_ids, hist["item_id"].to_numpy())))
    hist = hist.sort("user_id", "position", descending=[False, True])
    hist = hist.with_columns(pl.int_range(pl.len()).over("user_id").alias("age"))
    users = hist["user_id"].unique(maintain_order=True).to_numpy()
    for start in range(0, len(users), block_users):
        block = users[start:start + block_users]
        frame = _score_block(hist.filter(pl.col("user_id").is_in(block)), block, item_ids, vectors,
                             popularity_rank, length, history_events, half_life)
        if progress is not None:
            progress(min(start + block_users, len(users)), len(users))
        yield frame


def _index_of(item_ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Each wanted item's row in the sorted `item_ids`, -1 when it has no embedding."""
    pos = np.clip(np.searchsorted(item_ids, wanted), 0, max(len(item_ids) - 1, 0))
    return np.where(item_ids[pos] == wanted, pos, -1) if len(item_ids) else np.full(len(wanted), -1)


def _score_block(hist: pl.DataFrame, block: np.ndarray, item_ids, vectors, popularity_rank, length,
                 history_events, half_life) -> pl.DataFrame:
    row_of = {int(u): i for i, u in enumerate(block)}
    rows = np.fromiter((row_of[int(u)] for u in hist["user_id"].to_numpy()), dtype=np.int64, count=hist.height)
    index, age = hist["index"].to_numpy(), hist["age"].to_numpy()
    recent = (age < history_events) & (index >= 0)
    profiles = np.zeros((len(block), vectors.shape[1]), dtype=np.float64)
    np.add.at(profiles, rows[recent], vectors[index[recent]] * recency_weights(age[recent], half_life)[:, None])
    norms = np.linalg.norm(profiles, axis=1)
    has_profile = norms > 0
    profiles[has_profile] /= norms[has_profile, None]
    scores = profiles.astype(np.float32) @ vectors.T
    np.round(scores, 6, out=scores)  # in place: the block is the biggest array held
    seen = index >= 0
    scores[rows[seen], index[seen]] = -np.inf  # the whole history, not only the recent events
    take = min(length, vectors.shape[0])
    out: list[tuple[int, int, float, int, int]] = []
    for r in np.flatnonzero(has_profile):
        s = scores[r]
        top = np.argpartition(-s, take - 1)[:take] if take < len(s) else np.arange(len(s))
        threshold = s[top].min()
        if threshold == -np.inf:
            top = top[s[top] > -np.inf]
        else:
            top = np.flatnonzero(s >= threshold)  # every item tied at the boundary competes
        # score desc, then popularity, then id (item_ids are sorted, so the index orders ids)
        top = top[np.lexsort((top, popularity_rank[top], -s[top]))][:take]
        mine = recent & (rows == r)
        history_rows = np.unique(index[mine])  # ascending index = ascending item id
        closest = history_rows[np.argmax(vectors[top] @ vectors[history_rows].T, axis=1)]
        for rank, (item, near) in enumerate(zip(top, closest), 1):
            out.append((int(block[r]), int(item_ids[item]), float(s[item]), rank, int(item_ids[near])))
    return pl.DataFrame(out, schema=SCHEMA, orient="row")
