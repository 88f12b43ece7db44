"""Item vocabulary, per-user sequences and length-sorted training batches.

Index 0 is padding everywhere, so item ``k`` of the catalogue has index ``k + 1``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

PAD = 0


@dataclass(frozen=True)
class Catalogue:
    """The items a model can score and the content tokens each one carries.

    ``token_offsets``/``token_index`` are a CSR layout over items in vocabulary order
    (padding excluded): the tokens of item index ``k + 1`` are
    ``token_index[token_offsets[k]:token_offsets[k + 1]]``.
    """

    item_ids: np.ndarray  # int64, sorted, unique
    token_names: tuple[str, ...]
    token_offsets: np.ndarray  # int64, len(item_ids) + 1
    token_index: np.ndarray  # int64

    @property
    def n_items(self) -> int:
        return int(self.item_ids.shape[0])

    def index(self, item_ids: np.ndarray, *, where: str = "item ids") -> np.ndarray:
        """Vocabulary indices (1-based) of ``item_ids``; unknown ids are an error."""
        ids = np.asarray(item_ids, dtype=np.int64)
        pos = np.searchsorted(self.item_ids, ids)
        pos = np.minimum(pos, max(self.n_items - 1, 0))
        known = self.n_items > 0 and (self.item_ids[pos] == ids)
        if not np.all(known):
            missing = np.unique(ids[~np.asarray(known, dtype=bool)])[:5].tolist()
            raise ValueError(
                f"{where}: expected every item id to be in the catalogue of "
                f"{self.n_items} items, found unknown ids {missing}"
            )
        return pos + 1


def build_catalogue(
    item_ids: np.ndarray,
    token_item_ids: np.ndarray | None = None,
    tokens: np.ndarray | list[str] | None = None,
    *,
    min_token_items: int = 2,
) -> Catalogue:
    """A catalogue of ``item_ids`` with content tokens given as (item id, token) rows.

    Tokens carried by fewer than ``min_token_items`` items are dropped: a token seen on
    one item only is a second private embedding, not shared side information.
    Rows whose item is not in ``item_ids`` are ignored.
    """
    ids = np.unique(np.asarray(item_ids, dtype=np.int64))
    if ids.size == 0:
        raise ValueError("build_catalogue: expected at least one item id, found none")
    tok_items = np.asarray([] if token_item_ids is None else token_item_ids, dtype=np.int64)
    tok_names = np.asarray([] if tokens is None else tokens, dtype=object)
    if tok_items.shape != tok_names.shape:
        raise ValueError(
            f"build_catalogue: expected one token per token item id, found "
            f"{tok_items.shape[0]} item ids and {tok_names.shape[0]} tokens"
        )
    pos = np.searchsorted(ids, tok_items)
    keep = (pos < ids.size) & (ids[np.minimum(pos, ids.size - 1)] == tok_items)
    keep &= np.array([isinstance(t, str) and t != "" for t in tok_names], dtype=bool)
    pairs = sorted(set(zip(pos[keep].tolist(), tok_names[keep].tolist())))
    n_items_per_token: dict[str, int] = {}
    for _, name in pairs:
        n_items_per_token[name] = n_items_per_token.get(name, 0) + 1
    names = tuple(sorted(n for n, c in n_items_per_token.items() if c >= min_token_items))
    token_of = {n: i for i, n in enumerate(names)}
    kept = [(k, token_of[n]) for k, n in pairs if n in token_of]
    counts = np.bincount(np.array([k for k, _ in kept], dtype=np.int64), minlength=ids.size)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    index = np.array([t for _, t in kept], dtype=np.int64)
    return Catalogue(ids, names, offsets, index)


def user_sequences(
    user_ids: np.ndarray, item_index: np.ndarray, positions: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Group events into one index sequence per user, ordered by ``positions``."""
    users = np.asarray(user_ids, dtype=np.int64)
    items = np.asarray(item_index, dtype=np.int64)
    pos = np.asarray(positions, dtype=np.int64)
    if not (users.shape == items.shape == pos.shape):
        raise ValueError(
            f"user_sequences: expected equal-length columns, found users {users.shape}, "
            f"items {items.shape}, positions {pos.shape}"
        )
    order = np.lexsort((pos, users))
    users, items = users[order], items[order]
    uniq, starts = np.unique(users, return_index=True)
    return uniq, np.split(items, starts[1:]) if users.size else []


def list_histories(catalogue: "Catalogue", user_ids: np.ndarray, item_ids: np.ndarray, positions: np.ndarray,
                   list_users: np.ndarray, where: str = "item_id") -> tuple[np.ndarray, list[np.ndarray]]:
    """(list users in ascending order, each one's history as item indices in position order)
    from events (user, item id, position); a list user without an event gets an empty history,
    from which the model starts in its initial state."""
    index = catalogue.index(item_ids, where=where)
    with_history, history_seqs = user_sequences(user_ids, index, positions)
    history_of = dict(zip(with_history.tolist(), history_seqs))
    ids = np.sort(np.asarray(list_users, dtype=np.int64))
    return ids, [history_of.get(u, np.zeros(0, dtype=np.int64)) for u in ids.tolist()]


@dataclass(frozen=True)
class Batch:
    inputs: torch.Tensor  # [B, T] item indices, right-padded with PAD
    targets: torch.Tensor  # [B, T] next item indices, PAD where there is none
    lengths: torch.Tensor  # [B]


def training_windows(sequences: list[np.ndarray], window: int) -> list[np.ndarray]:
    """Cut sequences into windows of ``window + 1`` items that overlap by one item.

    Every transition of every sequence appears exactly once as (input, target). The
    cut starts from the end so the one short window is a user's oldest events.
    """
    if window < 1:
        raise ValueError(f"training_windows: expected window >= 1, found {window}")
    out: list[np.ndarray] = []
    for seq in sequences:
        end = len(seq)
        while end >= 2:
            start = max(0, end - window - 1)
            out.append(seq[start:end])
            end = start + 1
    return out


def make_batches(
    windows: list[np.ndarray], batch_size: int, rng: np.random.Generator | None = None
) -> list[Batch]:
    """Batches of windows of similar length, so padding costs almost nothing.

    Windows are sorted by length before grouping; with ``rng`` the order of equal-length
    windows and of the batches is shuffled (a new shuffle each epoch).
    """
    if batch_size < 1:
        raise ValueError(f"make_batches: expected batch_size >= 1, found {batch_size}")
    lengths = np.array([len(w) for w in windows], dtype=np.int64)
    tie = rng.permutation(len(windows)) if rng is not None else np.arange(len(windows))
    order = np.lexsort((tie, -lengths))
    batches: list[Batch] = []
    for start in range(0, len(order), batch_size):
        chosen = [windows[i] for i in order[start : start + batch_size]]
        width = max(len(w) for w in chosen) - 1
        block = np.zeros((len(chosen), width + 1), dtype=np.int64)
        for row, w in enumerate(chosen):
            block[row, : len(w)] = w
        block_t = torch.from_numpy(block)
        batches.append(
            Batch(
                inputs=block_t[:, :-1].clone(),
                targets=block_t[:, 1:].clone(),
                lengths=torch.tensor([len(w) - 1 for w in chosen], dtype=torch.int64),
            )
        )
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def pad_histories(histories: list[np.ndarray], max_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded [U, T] block of the last ``max_len`` items of each history, and lengths."""
    cut = [h[-max_len:] if max_len else h for h in histories]
    width = max([len(h) for h in cut] + [1])
    block = np.zeros((len(cut), width), dtype=np.int64)
    for row, h in enumerate(cut):
        block[row, : len(h)] = h
    return torch.from_numpy(block), torch.tensor([len(h) for h in cut], dtype=torch.int64)
