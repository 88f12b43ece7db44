"""From event and item frames to what train_lm takes: the catalogue with its content tokens,
each user's train sequence and the valid events to stop early on."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from .sequences import Catalogue, build_catalogue, user_sequences


def content_tokens(items: pl.DataFrame, tags: pl.DataFrame) -> pl.DataFrame:
    """(item_id, token) rows: 'genre:<genre>' for each genre of ``items`` (item_id, genres) and
    'tag:<tag>' for each row of ``tags`` (item_id, tag), lower-cased, tags stripped."""
    genres = items.select("item_id", pl.col("genres").alias("token")).explode("token").drop_nulls()
    return pl.concat([
        genres.with_columns(("genre:" + pl.col("token").str.to_lowercase()).alias("token")),
        tags.select("item_id", ("tag:" + pl.col("tag").str.to_lowercase().str.strip_chars()).alias("token")),
    ])


@dataclass
class TrainingData:
    """The events of one training run, as train_lm reads them.

    ``index`` is every event's vocabulary index; ``train`` and ``valid`` are masks over the
    events (``valid``: valid events of users with train events); ``valid_histories[i]`` is the
    train sequence of the user of the i-th valid event, whose target is ``valid_targets[i]``.
    """

    catalogue: Catalogue
    index: np.ndarray
    train: np.ndarray
    train_users: np.ndarray
    train_seqs: list[np.ndarray]
    valid: np.ndarray
    valid_histories: list[np.ndarray]

    @property
    def valid_targets(self) -> np.ndarray:
        return self.index[self.valid]


def training_data(events: pl.DataFrame, items: pl.DataFrame, tags: pl.DataFrame,
                  where: str = "fit_events.item_id") -> TrainingData:
    """``events`` (user_id, item_id, position, split in train/valid/test), ``items`` (item_id,
    genres) and ``tags`` (item_id, tag) as a TrainingData; an event item missing from ``items``
    is a ValueError naming ``where``."""
    tokens = content_tokens(items, tags)
    catalogue = build_catalogue(items["item_id"].to_numpy(), tokens["item_id"].to_numpy(),
                                tokens["token"].to_numpy())
    index = catalogue.index(events["item_id"].to_numpy(), where=where)
    users, positions, split = events["user_id"].to_numpy(), events["position"].to_numpy(), events["split"].to_numpy()
    train = split == "train"
    train_users, train_seqs = user_sequences(users[train], index[train], positions[train])
    history_of = dict(zip(train_users.tolist(), train_seqs))
    valid = (split == "valid") & np.isin(users, train_users)
    valid_histories = [history_of[u] for u in users[valid].tolist()]
    return TrainingData(catalogue, index, train, train_users, train_seqs, valid, valid_histories)


def text_matrix(catalogue: Catalogue, texts: pl.DataFrame | None) -> np.ndarray | None:
    """train_lm's ``text``: [n_items + 1, dim] float32, row k + 1 the embedding of catalogue
    item k from ``texts`` (item_id, embedding: a fixed-width list), a zero row for padding and
    for items without one; None when ``texts`` is None or empty (the LM then reads no text)."""
    if texts is None or texts.is_empty():
        return None
    vectors = np.asarray(texts["embedding"].to_list(), dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError("ml.item_text_embeddings.embedding: expected vectors of one width, found ragged rows")
    ids = texts["item_id"].to_numpy().astype(np.int64)
    pos = np.searchsorted(catalogue.item_ids, ids)
    pos = np.minimum(pos, max(catalogue.n_items - 1, 0))
    known = catalogue.item_ids[pos] == ids
    out = np.zeros((catalogue.n_items + 1, vectors.shape[1]), dtype=np.float32)
    out[pos[known] + 1] = vectors[known]
    return out
