"""Scoring: user states times item vectors, mixed with the bigram, history excluded, top-K.

``TrainedLM`` is everything a score depends on (catalogue, weights, mixture), and
round-trips through bytes, so a checkpoint stored in the warehouse reproduces the scores.
"""
from __future__ import annotations

import io
from dataclasses import asdict, dataclass

import numpy as np
import torch

from .model import ItemLM, LMConfig
from .ngram import Bigram, fit_bigram, next_item_probs
from .sequences import Catalogue, pad_histories


@dataclass(frozen=True)
class Mixture:
    """P(next) = rnn_weight * P_rnn + (1 - rnn_weight) * P_ngram.

    The n-gram half (see ``ngram``) counts pairs up to ``max_distance`` apart, the reverse
    direction at ``backward_weight``, backs off to the unigram with ``smoothing``, and
    averages over the last ``context`` history items weighted ``decay ** age``.
    """

    rnn_weight: float = 1.0
    smoothing: float = 1.0
    decay: float = 1.0
    context: int = 1
    max_distance: int = 1
    backward_weight: float = 0.0

    def fit_ngram(self, sequences: list[np.ndarray], n_items: int) -> Bigram | None:
        if self.rnn_weight >= 1.0:
            return None
        return fit_bigram(sequences, n_items, max_distance=self.max_distance,
                          backward_weight=self.backward_weight)


@dataclass
class TrainedLM:
    catalogue: Catalogue
    model: ItemLM
    mixture: Mixture
    context: int  # the most recent events a user state is computed from

    def to_bytes(self) -> bytes:
        cat = self.catalogue
        blob = {
            "config": self.model.config.to_dict(),
            "weights": self.model.state_dict(),
            "item_ids": torch.from_numpy(cat.item_ids),
            "token_names": list(cat.token_names),
            "token_offsets": torch.from_numpy(cat.token_offsets),
            "token_index": torch.from_numpy(cat.token_index),
            "mixture": asdict(self.mixture),
            "context": int(self.context),
        }
        buf = io.BytesIO()
        torch.save(blob, buf)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "TrainedLM":
        try:
            blob = torch.load(io.BytesIO(data), weights_only=True)
        except Exception as exc:  # a corrupt or foreign BLOB: say what was expected
            raise ValueError(f"TrainedLM.from_bytes: expected a duckrec LM checkpoint, found {len(data)} unreadable bytes ({exc})") from exc
        cat = Catalogue(
            item_ids=blob["item_ids"].numpy(),
            token_names=tuple(blob["token_names"]),
            token_offsets=blob["token_offsets"].numpy(),
            token_index=blob["token_index"].numpy(),
        )
        weights = blob["weights"]
        model = ItemLM(LMConfig(**blob["config"]), weights["token_offsets"], weights["token_index"], weights["has_events"])
        model.load_state_dict(weights)
        model.eval()
        return cls(cat, model, Mixture(**blob["mixture"]), blob["context"])


@torch.no_grad()
def user_states(model: ItemLM, histories: list[np.ndarray], context: int | None = None, batch_size: int = 512) -> torch.Tensor:
    """[U, d] item-space state after each history's last ``context`` events (eval mode)."""
    was_training = model.training
    model.eval()
    try:
        return _states(model, histories, context, batch_size)
    finally:
        model.train(was_training)


def _states(model: ItemLM, histories: list[np.ndarray], context: int | None, batch_size: int) -> torch.Tensor:
    vectors = model.item_vectors()
    out = model.initial_state().expand(len(histories), -1).clone()
    lengths = np.array([min(len(h), context or len(h)) for h in histories])
    order = np.argsort(-lengths, kind="stable")
    order = order[lengths[order] > 0]
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        inputs, lens = pad_histories([histories[i] for i in rows], context)
        states, _ = model(inputs, vectors)
        out[torch.from_numpy(rows)] = states[torch.arange(len(rows)), lens - 1]
    return out


def next_item_scores(lm: TrainedLM, states: torch.Tensor, histories: list[np.ndarray], bigram: Bigram | None) -> torch.Tensor:
    """[U, n_items] mixed next-item probabilities for users with these states and histories."""
    with torch.no_grad():
        probs = torch.softmax(lm.model.logits(states, lm.model.item_vectors()), dim=1)
    w = lm.mixture.rnn_weight
    if bigram is None or w >= 1.0:
        return probs
    mix = lm.mixture
    return w * probs + (1.0 - w) * next_item_probs(bigram, histories, mix.smoothing, mix.context, mix.decay)


def _exclude(scores: torch.Tensor, exclude: list[np.ndarray]) -> None:
    rows = np.concatenate([np.full(len(e), r) for r, e in enumerate(exclude)] + [np.zeros(0, np.int64)])
    cols = np.concatenate([np.asarray(e, dtype=np.int64) for e in exclude] + [np.zeros(0, np.int64)]) - 1
    scores[torch.from_numpy(rows.astype(np.int64)), torch.from_numpy(cols)] = float("-inf")


def top_k(
    lm: TrainedLM,
    histories: list[np.ndarray],
    k: int,
    *,
    exclude: list[np.ndarray] | None = None,
    bigram_sequences: list[np.ndarray] | None = None,
    chunk_size: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` items per user: (1-based item indices [U, k], scores [U, k]), best first.

    ``exclude`` (default: the histories) are never returned; where fewer than ``k`` items
    remain the tail holds index 0 and score -inf. The bigram half of the mixture is
    counted over ``bigram_sequences`` (default: the histories themselves), i.e. over the
    events that are history at scoring time.
    """
    if k < 1:
        raise ValueError(f"top_k: expected k >= 1, found {k}")
    exclude = histories if exclude is None else exclude
    if len(exclude) != len(histories):
        raise ValueError(f"top_k: expected one exclusion list per history, found {len(exclude)} for {len(histories)}")
    n = lm.catalogue.n_items
    bigram = lm.mixture.fit_ngram(histories if bigram_sequences is None else bigram_sequences, n)
    states = user_states(lm.model, histories, lm.context)
    kk = min(k, n)
    items = np.zeros((len(histories), k), dtype=np.int64)
    scores = np.full((len(histories), k), float("-inf"))
    for start in range(0, len(histories), chunk_size):
        stop = min(start + chunk_size, len(histories))
        s = next_item_scores(lm, states[start:stop], histories[start:stop], bigram)
        _exclude(s, exclude[start:stop])
        val, idx = torch.topk(s, kk, dim=1)
        items[start:stop, :kk] = (idx + 1).numpy()
        scores[start:stop, :kk] = val.double().numpy()
    items[~np.isfinite(scores)] = 0
    return items, scores


def rank_metrics(items: np.ndarray, targets: np.ndarray, k: int) -> dict[str, float]:
    """hit_rate@k and ndcg@k (binary gain, one target per user) of ranked ``items``."""
    if len(targets) == 0:
        return {"hit_rate": 0.0, "ndcg": 0.0}
    hits = items[:, :k] == np.asarray(targets).reshape(-1, 1)
    rank = np.argmax(hits, axis=1)
    found = hits.any(axis=1)
    return {
        "hit_rate": float(found.mean()),
        "ndcg": float(np.where(found, 1.0 / np.log2(rank + 2.0), 0.0).mean()),
    }


def score_candidates_mc(
    lm: TrainedLM,
    histories: list[np.ndarray],
    candidates: np.ndarray,
    *,
    passes: int = 20,
    seed: int = 0,
    bigram_sequences: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std [U, C] of the mixed probability of each (user, candidate) over
    ``passes`` forward passes with dropout on (MC dropout): an uncertainty the
    re-rankers can explore with. ``candidates`` are 1-based item indices; 0 pads.
    The global torch RNG is left as it was.
    """
    cand = torch.as_tensor(np.asarray(candidates, dtype=np.int64))
    if cand.ndim != 2 or cand.shape[0] != len(histories):
        raise ValueError(f"score_candidates_mc: expected candidates [{len(histories)}, C], found {tuple(cand.shape)}")
    if passes < 2:
        raise ValueError(f"score_candidates_mc: expected passes >= 2 for a std, found {passes}")
    n = lm.catalogue.n_items
    bigram = lm.mixture.fit_ngram(histories if bigram_sequences is None else bigram_sequences, n)
    pick = (cand - 1).clamp(min=0)
    draws = []
    model = lm.model
    was_training = model.training
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        model.train()  # dropout on; no optimiser step, so weights do not change
        try:
            for _ in range(passes):
                states = _states(model, histories, lm.context, 512)
                draws.append(torch.gather(next_item_scores(lm, states, histories, bigram), 1, pick))
        finally:
            model.train(was_training)
    stack = torch.stack(draws)
    mean, std = stack.mean(0), stack.std(0)
    mean[cand == 0], std[cand == 0] = 0.0, 0.0
    return mean.double().numpy(), std.double().numpy()
