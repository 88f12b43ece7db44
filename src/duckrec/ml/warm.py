"""Warm start: carry a trained LM over to a grown catalogue and train on what is new.

Items and content tokens are matched by id and by name. A new item's own embedding starts
at zero, so its vector starts as the mean of its content tokens' embeddings (what a cold
item gets anyway); its bias starts at the mean bias. A new token starts small and random.
The recurrent or attention cell and the output projection are carried over unchanged (a
transformer keeps its positions, so its context length: lm.max_len "auto" follows it).
"""
from __future__ import annotations

import numpy as np
import torch

from .score import TrainedLM
from .sequences import Catalogue, training_windows

ARCHITECTURE = ("embedding_dim", "hidden_dim", "cell", "layers", "heads")
DEFAULTS = {"heads": 1}  # what a checkpoint from before the setting holds


def compatible(previous: TrainedLM, settings: dict) -> bool:
    """Whether the previous model has the architecture `settings` asks for (a transformer:
    also its context, unless lm.max_len is "auto")."""
    old = previous.model.config.to_dict()
    old = {**DEFAULTS, **old}
    same = all(settings.get(k, old[k]) == old[k] for k in ARCHITECTURE)
    same = same and int(settings.get("text_dim", 0)) == int(old.get("text_dim", 0))
    max_len = settings.get("max_len", "auto")
    return same and (old.get("cell") != "transformer" or max_len == "auto" or max_len == old.get("max_len"))


def carry_weights(previous: TrainedLM, catalogue: Catalogue, has_events: np.ndarray,
                  seed: int, text: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    """A state dict for a model over `catalogue` holding `previous`'s weights; ``text``: the
    new catalogue's text embeddings (train_lm's ``text``) where the previous model read text."""
    old = previous.model.state_dict()
    d = previous.model.config.embedding_dim
    n_new, n_tok = catalogue.n_items, len(catalogue.token_names)
    old_ids = previous.catalogue.item_ids
    pos = np.searchsorted(old_ids, catalogue.item_ids)
    pos = np.minimum(pos, len(old_ids) - 1)
    known = old_ids[pos] == catalogue.item_ids
    new_rows = torch.from_numpy(np.flatnonzero(known) + 1)
    old_rows = torch.from_numpy(pos[known] + 1)

    item = torch.zeros(n_new + 1, d)
    item[new_rows] = old["item_embedding.weight"][old_rows]
    bias = torch.full((n_new + 1,), float(old["item_bias"][1:].mean()))
    bias[0] = 0.0
    bias[new_rows] = old["item_bias"][old_rows]

    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randn(n_tok + 1, d, generator=gen) * 0.1
    old_token = {name: i for i, name in enumerate(previous.catalogue.token_names)}
    carried = [(i, old_token[name]) for i, name in enumerate(catalogue.token_names) if name in old_token]
    if carried:
        new_t, old_t = (torch.tensor(x) for x in zip(*carried))
        tokens[new_t] = old["token_embedding.weight"][old_t]

    state = {k: v.clone() for k, v in old.items()}
    state.update({
        "item_embedding.weight": item,
        "item_bias": bias,
        "token_embedding.weight": tokens,
        "token_offsets": torch.from_numpy(catalogue.token_offsets).long(),
        "token_index": torch.from_numpy(catalogue.token_index).long(),
        "has_events": torch.from_numpy(np.asarray(has_events, dtype=np.float32)).reshape(-1, 1),
    })
    if "text_vectors" in state:
        if text is None or text.shape[1] != state["text_vectors"].shape[1]:
            raise ValueError("carry_weights: the previous model reads text embeddings of width "
                             f"{state['text_vectors'].shape[1]}; expected them for the new catalogue, found "
                             f"{None if text is None else text.shape}")
        state["text_vectors"] = torch.from_numpy(np.asarray(text, dtype=np.float32))
    return state


def warm_windows(sequences: list[np.ndarray], n_new: np.ndarray, window: int, replay_ratio: float,
                 seed: int) -> tuple[list[np.ndarray], int, int]:
    """Windows over what is new plus a replay sample of the rest.

    `n_new[u]`: how many of sequence u's last events are new to the model (0: unchanged).
    The new part's windows cover every transition into a new event with up to `window`
    events of context; the replay sample, `replay_ratio` times as many windows drawn from
    the unchanged sequences, keeps the model from forgetting them.
    Returns (windows, new windows, replayed windows).
    """
    fresh: list[np.ndarray] = []
    rest: list[np.ndarray] = []
    for seq, k in zip(sequences, n_new):
        if k > 0:
            fresh.extend(training_windows([seq[max(0, len(seq) - int(k) - window):]], window))
        else:
            rest.append(seq)
    pool = training_windows(rest, window)
    n_replay = min(len(pool), int(round(replay_ratio * len(fresh))))
    rng = np.random.default_rng(seed)
    replay = [pool[i] for i in sorted(rng.choice(len(pool), n_replay, replace=False))] if n_replay else []
    return fresh + replay, len(fresh), len(replay)


def fit_digest(users: np.ndarray, items: np.ndarray, values: np.ndarray) -> bytes:
    """Per user (ascending ids): how many events the model learns from and a hash of them in
    order (item and value), packed as bytes. Inputs are sorted by user, then position."""
    if len(users) == 0:
        return b""
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)]
    items = np.ascontiguousarray(items, dtype=np.int64)
    values = np.ascontiguousarray(values, dtype=np.float64)
    out = np.empty((len(starts), 3), dtype=np.uint64)
    for row, (a, b) in enumerate(zip(starts, ends)):
        out[row] = (np.int64(users[a]).view(np.uint64), b - a, _span_hash(items, values, a, b))
    return out.tobytes()


def _span_hash(items: np.ndarray, values: np.ndarray, a: int, b: int) -> int:
    import hashlib

    h = hashlib.blake2b(items[a:b].tobytes() + values[a:b].tobytes(), digest_size=8).digest()
    return int(np.frombuffer(h, dtype=np.uint64)[0])


def _unpack(digest: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    table = np.frombuffer(digest, dtype=np.uint64).reshape(-1, 3)
    return table[:, 0].view(np.int64), table[:, 1].astype(np.int64), table[:, 2]


def grown_by_appends(parent: bytes, users: np.ndarray, items: np.ndarray, values: np.ndarray) -> tuple[bool, str]:
    """Whether every sequence the parent model learned from (its `fit_digest`) is still the
    start of that user's sequence today: the only change a warm start may build on. Returns
    (ok, what differs)."""
    p_users, p_n, p_hash = _unpack(parent)
    if len(p_users) == 0:
        return True, ""
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]]) if len(users) else np.zeros(0, np.int64)
    ends = np.r_[starts[1:], len(users)] if len(users) else starts
    at = {int(u): (a, b) for u, a, b in zip(users[starts].tolist(), starts.tolist(), ends.tolist())}
    items = np.ascontiguousarray(items, dtype=np.int64)
    values = np.ascontiguousarray(values, dtype=np.float64)
    gone, changed = 0, 0
    for u, n, h in zip(p_users.tolist(), p_n.tolist(), p_hash.tolist()):
        span = at.get(u)
        if span is None or span[1] - span[0] < n:
            gone += 1
            continue
        if _span_hash(items, values, span[0], span[0] + n) != h:
            changed += 1
    if gone or changed:
        return False, (f"{gone + changed} of {len(p_users)} users' fit events are no longer what the parent "
                       f"learned from plus appended events ({gone} shorter or gone, {changed} changed)")
    return True, ""
