"""The training loop: full-softmax next-item cross-entropy, early stopping on validation
NDCG@k, then the bigram mixture weight fitted on the same validation events.
"""
from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .model import ItemLM, LMConfig, full_softmax_loss
from .ngram import fit_bigram, next_item_probs
from .score import Mixture, TrainedLM, rank_metrics, user_states
from .sequences import Catalogue, make_batches, training_windows


@dataclass(frozen=True)
class TrainConfig:
    embedding_dim: int = 64
    hidden_dim: int = 128
    cell: str = "gru"
    layers: int = 1
    dropout: float = 0.1
    epochs: int = 20
    batch_size: int = 256
    window: int = 32  # training windows (truncated BPTT length) and scoring context
    lr: float = 1e-2
    weight_decay: float = 0.0
    patience: int = 2  # epochs without a better validation NDCG before stopping
    max_seconds: float = 50.0  # training stops before an epoch that would overrun it
    sampled_softmax: int = 0  # 0: full softmax; n > 0: n shared negatives per batch
    seed: int = 42
    threads: int = 2
    eval_k: int = 10
    # the n-gram half of the mixture; the grids are searched on validation NDCG@k
    ngram_distance: int = 5
    ngram_backward: float = 0.5
    ngram_context: int = 5
    rnn_weights: tuple[float, ...] = (1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0)
    smoothings: tuple[float, ...] = (0.5, 2.0, 8.0)
    decays: tuple[float, ...] = (0.4, 0.6, 0.8)

    @classmethod
    def from_vars(cls, values: dict | None) -> "TrainConfig":
        """A config from a project's ``lm`` var; unknown keys are an error."""
        values = dict(values or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"TrainConfig: unknown lm settings {unknown}; expected some of {sorted(known)}")
        for key in ("rnn_weights", "smoothings", "decays"):
            if key in values:
                values[key] = tuple(float(v) for v in values[key])
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass
class TrainResult:
    lm: TrainedLM
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0


@contextmanager
def deterministic(seed: int, threads: int) -> Iterator[np.random.Generator]:
    """Seeded, deterministic torch on a fixed thread count; previous settings restored."""
    old_threads, old_det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield np.random.default_rng(seed)
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)


def _loss(model: ItemLM, states: torch.Tensor, targets: torch.Tensor, vectors: torch.Tensor,
          n_sampled: int, sampler: torch.Tensor | None) -> torch.Tensor:
    if not n_sampled:
        return full_softmax_loss(model, states, targets, vectors)
    # shared negatives drawn from P(item)^0.75, with the logQ correction so the sampled
    # softmax estimates the full one; an accidental hit of the target is masked out
    negatives = torch.multinomial(sampler, n_sampled, replacement=True) + 1
    log_q = torch.log(sampler * n_sampled)
    pos = (states * vectors[targets]).sum(1) + model.item_bias[targets] - log_q[targets - 1]
    neg = states @ vectors[negatives].T + model.item_bias[negatives] - log_q[negatives - 1]
    neg = neg.masked_fill(negatives.unsqueeze(0) == targets.unsqueeze(1), float("-inf"))
    return F.cross_entropy(torch.cat([pos.unsqueeze(1), neg], 1), torch.zeros_like(targets))


class _Validator:
    """NDCG@k on validation for every (rnn weight, smoothing) of the grid, in one pass."""

    def __init__(self, histories: list[np.ndarray], targets: np.ndarray, n_items: int, config: TrainConfig):
        self.histories, self.targets, self.config = histories, np.asarray(targets), config
        self.base = Mixture(1.0, 1.0, 1.0, config.ngram_context, config.ngram_distance, config.ngram_backward)
        bigram = fit_bigram(histories, n_items, max_distance=config.ngram_distance,
                            backward_weight=config.ngram_backward)
        self.ngram_probs = {(s, d): next_item_probs(bigram, histories, s, config.ngram_context, d)
                            for s in config.smoothings for d in config.decays}
        rows = np.concatenate([np.full(len(h), r) for r, h in enumerate(histories)] + [np.zeros(0, np.int64)])
        cols = np.concatenate(list(histories) + [np.zeros(0, np.int64)]) - 1
        self.seen = (torch.from_numpy(rows.astype(np.int64)), torch.from_numpy(cols.astype(np.int64)))

    def evaluate(self, model: ItemLM) -> tuple[dict[str, float], Mixture, dict[str, float]]:
        """(best metrics, its mixture, rnn-alone metrics)."""
        k = self.config.eval_k
        states = user_states(model, self.histories, self.config.window)
        with torch.no_grad():
            rnn = torch.softmax(model.logits(states, model.item_vectors()), 1)
        best, best_mix, alone = None, self.base, None
        for w in self.config.rnn_weights:
            for s, d in self.ngram_probs if w < 1 else [(1.0, 1.0)]:
                scores = rnn if w >= 1 else w * rnn + (1 - w) * self.ngram_probs[(s, d)]
                scores = scores.clone()
                scores[self.seen] = float("-inf")
                val, idx = torch.topk(scores, min(k, scores.shape[1]), 1)
                top = torch.where(torch.isfinite(val), idx + 1, 0).numpy()
                m = rank_metrics(top, self.targets, k)
                if w >= 1:
                    alone = m
                if best is None or m["ndcg"] > best["ndcg"] + 1e-12:
                    best, best_mix = m, replace(self.base, rnn_weight=w, smoothing=s, decay=d)
        return best, best_mix, alone or best


def train_lm(
    catalogue: Catalogue,
    train_sequences: list[np.ndarray],
    valid_histories: list[np.ndarray],
    valid_targets: np.ndarray,
    config: TrainConfig = TrainConfig(),
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train the LM on ``train_sequences`` (1-based item indices, one per user).

    Every position predicts the next. After each epoch the state after each validation
    history predicts its target; the epoch and the bigram mixture with the best NDCG@k
    are kept. Without validation events the last epoch and the RNN alone are kept.
    """
    n = catalogue.n_items
    windows = training_windows(train_sequences, config.window)
    if not windows:
        raise ValueError(
            "train_lm: expected training sequences with at least two events (one "
            f"transition), found {len(train_sequences)} sequences and no transition; "
            "is the train split empty?"
        )
    if len(valid_histories) != len(valid_targets):
        raise ValueError(f"train_lm: expected one validation target per history, found "
                         f"{len(valid_targets)} targets for {len(valid_histories)} histories")
    counts = np.bincount(np.concatenate(train_sequences), minlength=n + 1)
    lm_config = LMConfig(n, len(catalogue.token_names), config.embedding_dim, config.hidden_dim,
                         config.cell, config.layers, config.dropout)
    validator = _Validator(valid_histories, valid_targets, n, config) if len(valid_targets) else None
    history: list[dict] = []
    with deterministic(config.seed, config.threads) as rng:
        model = ItemLM(lm_config, torch.from_numpy(catalogue.token_offsets),
                       torch.from_numpy(catalogue.token_index), torch.from_numpy(counts > 0))
        opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        sampler = torch.from_numpy(counts[1:].astype(np.float64) ** 0.75 + 1e-3).float()
        sampler /= sampler.sum()
        best_ndcg, best_epoch, best_state, best_mix = -1.0, 0, None, Mixture()
        started = time.perf_counter()
        for epoch in range(1, config.epochs + 1):
            t0 = time.perf_counter()
            model.train()
            total, positions = 0.0, 0
            for batch in make_batches(windows, config.batch_size, rng):
                vectors = model.item_vectors()
                states, _ = model(batch.inputs, vectors)
                mask = batch.targets > 0  # padding predicts nothing and costs no logits
                loss = _loss(model, states[mask], batch.targets[mask], vectors,
                             config.sampled_softmax, sampler)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                opt.step()
                total += loss.item() * int(mask.sum())
                positions += int(mask.sum())
            row = {"epoch": epoch, "train_loss": total / positions}
            if validator is not None:
                metrics, mix, alone = validator.evaluate(model)
                row.update(valid_hit_rate=metrics["hit_rate"], valid_ndcg=metrics["ndcg"],
                           rnn_valid_ndcg=alone["ndcg"], rnn_weight=mix.rnn_weight, smoothing=mix.smoothing)
            else:
                metrics, mix = {"ndcg": float(epoch)}, Mixture()
                row.update(valid_hit_rate=None, valid_ndcg=None)
            row["seconds"] = time.perf_counter() - t0
            history.append(row)
            log(f"epoch {epoch} loss {row['train_loss']:.4f} valid ndcg@{config.eval_k} "
                f"{row['valid_ndcg'] if row['valid_ndcg'] is None else round(row['valid_ndcg'], 4)} "
                f"(rnn alone {row.get('rnn_valid_ndcg', float('nan')):.4f}) {row['seconds']:.1f}s")
            if metrics["ndcg"] > best_ndcg:
                best_ndcg, best_epoch, best_mix = metrics["ndcg"], epoch, mix
                best_state = {k: v.clone() for k, v in model.state_dict().items()}
            elif epoch - best_epoch >= config.patience:
                log(f"early stop: no better validation ndcg for {config.patience} epochs; keeping epoch {best_epoch}")
                break
            elapsed = time.perf_counter() - started
            if elapsed + row["seconds"] > config.max_seconds and epoch < config.epochs:
                log(f"time budget of {config.max_seconds:.0f}s reached; keeping epoch {best_epoch}")
                break
        model.load_state_dict(best_state)
        model.eval()
    return TrainResult(TrainedLM(catalogue, model, best_mix, config.window), history, best_epoch)
