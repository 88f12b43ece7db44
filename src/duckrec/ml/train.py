"""The training loop: full-softmax next-item cross-entropy, early stopping on validation
NDCG@k, then the bigram mixture weight fitted on the same validation events.
"""
from __future__ import annotations

import json
import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .model import ItemLM, LMConfig, fast_matmul_dtype, full_softmax_loss
from .ngram import fit_bigram, next_item_probs
from .score import Mixture, TrainedLM, rank_metrics, user_states
from .sequences import Catalogue, make_batches, training_windows
from .settings import settings_values


@dataclass(frozen=True)
class TrainConfig:
    embedding_dim: int = 64
    hidden_dim: int = 128
    cell: str = "gru"
    layers: int = 1
    dropout: float = 0.3
    epochs: int = 10  # at most; also the length of the cosine learning-rate schedule
    batch_size: int = 64  # windows per step
    window: int = 32  # training windows (truncated BPTT length) and scoring context
    lr: float = 2e-2  # peak learning rate (Adam)
    warmup: float = 0.05  # fraction of all steps with a linear warm-up to lr, then cosine decay
    min_lr: float = 0.05  # the cosine ends at lr * min_lr after `epochs` epochs
    weight_decay: float = 0.0
    patience: int = 3  # epochs in which neither the mixture nor the RNN alone improves on validation
    # Opt-in wall-clock guard: stop before an epoch that would overrun it. The number of
    # epochs then depends on machine load, so a fixed seed no longer fixes the tables:
    # it trades determinism for a time bound. None (default): epochs/patience alone decide.
    max_seconds: float | None = None
    horizon: int = 1  # each position's target: the next `horizon` items, weighted horizon_decay ** (k - 1)
    horizon_decay: float = 0.5
    matmul_dtype: str = "auto"  # softmax matmuls: auto (bfloat16 where native), float32, bfloat16
    sampled_softmax: int = 0  # 0: full softmax; n > 0: n shared negatives per batch
    seed: int = 42
    threads: int = 2
    eval_k: int = 10
    # the n-gram half of the mixture; the grids are searched on validation NDCG@k
    ngram_distance: int = 5
    ngram_backward: float = 0.5
    ngram_context: int = 5
    # no train transition: fall back to the n-gram half instead of failing (pipelines want a list)
    allow_untrained: bool = True
    rnn_weights: tuple[float, ...] = (1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0)
    smoothings: tuple[float, ...] = (0.5, 2.0, 8.0)
    decays: tuple[float, ...] = (0.4, 0.6, 0.8)

    @classmethod
    def from_vars(cls, values: dict | None) -> "TrainConfig":
        """A config from a project's ``lm`` var; unknown keys are an error."""
        return cls(**settings_values(cls, values, "lm", ("rnn_weights", "smoothings", "decays")))

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
          n_sampled: int, sampler: torch.Tensor | None, dtype: torch.dtype,
          weights: torch.Tensor | None = None) -> torch.Tensor:
    if not n_sampled:
        return full_softmax_loss(model, states, targets, vectors, dtype=dtype, weights=weights)
    targets = targets[:, 0] if targets.ndim == 2 else targets  # sampled: the next item only
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
        # probabilities are >= 0: a seen item is set to -1, so it never ranks above an
        # unseen one (one masked_fill per epoch, not an index_put per grid point)
        rows = np.concatenate([np.full(len(h), r) for r, h in enumerate(histories)] + [np.zeros(0, np.int64)])
        cols = np.concatenate(list(histories) + [np.zeros(0, np.int64)]) - 1
        self.seen = torch.zeros(len(histories), n_items, dtype=torch.bool)
        self.seen[torch.from_numpy(rows.astype(np.int64)), torch.from_numpy(cols.astype(np.int64))] = True
        self.ngram_probs = {}
        self.ngram_alone = {}  # the n-gram alone does not change between epochs
        for s in config.smoothings:
            for d in config.decays:
                probs = next_item_probs(bigram, histories, s, config.ngram_context, d).masked_fill_(self.seen, -1.0)
                self.ngram_probs[(s, d)] = probs
                self.ngram_alone[(s, d)] = self._metrics(probs)

    def _metrics(self, scores: torch.Tensor) -> dict[str, float]:
        k = self.config.eval_k
        val, idx = torch.topk(scores, min(k, scores.shape[1]), 1)
        return rank_metrics(torch.where(val >= 0, idx + 1, 0).numpy(), self.targets, k)

    def evaluate(self, model: ItemLM) -> tuple[dict[str, float], Mixture, dict[str, float]]:
        """(best metrics, its mixture, rnn-alone metrics)."""
        states = user_states(model, self.histories, self.config.window)
        with torch.no_grad():
            rnn = torch.softmax(model.logits(states, model.item_vectors()), 1).masked_fill_(self.seen, -1.0)
        best, best_mix, alone = None, self.base, self._metrics(rnn)
        for w in self.config.rnn_weights:
            for s, d in self.ngram_probs if w < 1 else [(1.0, 1.0)]:
                if w >= 1:
                    m = alone
                elif w <= 0:
                    m = self.ngram_alone[(s, d)]
                else:  # ranks as w * rnn + (1 - w) * ngram; seen items stay negative
                    m = self._metrics(torch.add(self.ngram_probs[(s, d)], rnn, alpha=w / (1 - w)))
                if best is None or m["ndcg"] > best["ndcg"] + 1e-12:
                    best, best_mix = m, replace(self.base, rnn_weight=w, smoothing=s, decay=d)
        return best, best_mix, alone


def future_targets(targets: torch.Tensor, horizon: int, decay: float) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, T, horizon] targets (the next ``horizon`` items of each position; 0 past the
    window's end) and their weights ``decay ** (k - 1)``, normalised per position.

    Rating logs order the items of one session partly arbitrarily (shared timestamps), so
    "one of the next few" is a steadier target than "exactly the next"; the skip-bigram
    half of the mixture counts pairs the same way. horizon 1 is plain next-item training.
    """
    width = targets.shape[1]
    padded = F.pad(targets, (0, horizon - 1))
    future = torch.stack([padded[:, k : k + width] for k in range(horizon)], dim=-1)
    w = (future > 0).float() * torch.tensor([decay**k for k in range(horizon)])
    return future, w / w.sum(-1, keepdim=True).clamp_min(1e-12)


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def lr_at(step: int, total_steps: int, config: TrainConfig) -> float:
    """Linear warm-up over ``warmup`` of the steps, then cosine decay to ``lr * min_lr``."""
    warm = max(1, round(config.warmup * total_steps))
    if step < warm:
        return config.lr * (step + 1) / warm
    done = min(1.0, (step - warm) / max(1, total_steps - warm))
    return config.lr * (config.min_lr + (1 - config.min_lr) * 0.5 * (1 + math.cos(math.pi * done)))


def train_lm(
    catalogue: Catalogue,
    train_sequences: list[np.ndarray],
    valid_histories: list[np.ndarray],
    valid_targets: np.ndarray,
    config: TrainConfig = TrainConfig(),
    log: Callable[[str], None] = print,
    progress: Callable[..., None] | None = None,
    *,
    init: dict[str, torch.Tensor] | None = None,
    windows: list[np.ndarray] | None = None,
) -> TrainResult:
    """Train the LM on ``train_sequences`` (1-based item indices, one per user).

    Every position predicts the next. After each epoch the state after each validation
    history predicts its target and the n-gram mixture weight is re-fitted; the epoch
    whose mixture has the best NDCG@k is kept. Training goes on while the mixture or the
    RNN alone still improves (``patience`` epochs without either stop it), at most
    ``epochs``. Without validation events the last epoch and the RNN alone are kept.

    Warm start (see warm.py): ``init`` is a state dict for this catalogue to start from,
    ``windows`` the training windows to use instead of every window of the sequences;
    the starting point itself is scored on validation first and kept if no epoch beats it.

    ``progress(task, done, total, figures, unit=..., final=...)``, if given, hears of every
    batch (loss so far, positions per second) and, at each epoch's end, the validation figures.
    """
    n = catalogue.n_items
    windows = training_windows(train_sequences, config.window) if windows is None else windows
    if not windows and not config.allow_untrained:
        raise ValueError(
            "train_lm: expected training sequences with at least two events (one "
            f"transition), found {len(train_sequences)} sequences and no transition; "
            "is the train split empty?"
        )
    if len(valid_histories) != len(valid_targets):
        raise ValueError(f"train_lm: expected one validation target per history, found "
                         f"{len(valid_targets)} targets for {len(valid_histories)} histories")
    counts = (np.bincount(np.concatenate(train_sequences), minlength=n + 1) if train_sequences
              else np.zeros(n + 1, dtype=np.int64))
    lm_config = LMConfig(n, len(catalogue.token_names), config.embedding_dim, config.hidden_dim,
                         config.cell, config.layers, config.dropout)
    validator = _Validator(valid_histories, valid_targets, n, config) if len(valid_targets) else None
    if not windows:
        # Defined fallback: nothing to learn from, so the RNN stays at its seeded
        # initialisation with no weight, and scores come from the n-gram half alone,
        # which backs off to item popularity.
        with deterministic(config.seed, config.threads):
            model = ItemLM(lm_config, torch.from_numpy(catalogue.token_offsets),
                           torch.from_numpy(catalogue.token_index), torch.from_numpy(counts > 0))
        model.eval()
        log(f"no train transition in {len(train_sequences)} train sequences: the RNN is left untrained "
            "and the lm strategy scores with the n-gram component alone (popularity where it has no pairs)")
        mixture = Mixture(0.0, 1.0, 1.0, config.ngram_context, config.ngram_distance, config.ngram_backward)
        return TrainResult(TrainedLM(catalogue, model, mixture, config.window), [], 0)
    dtype = fast_matmul_dtype(config.matmul_dtype)
    steps_per_epoch = -(-len(windows) // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    history: list[dict] = []
    with deterministic(config.seed, config.threads) as rng:
        model = ItemLM(lm_config, torch.from_numpy(catalogue.token_offsets),
                       torch.from_numpy(catalogue.token_index), torch.from_numpy(counts > 0))
        if init is not None:
            model.load_state_dict(init)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        sampler = torch.from_numpy(counts[1:].astype(np.float64) ** 0.75 + 1e-3).float()
        sampler /= sampler.sum()
        best_ndcg, best_rnn, best_epoch, last_gain = -1.0, -1.0, 0, 0
        best_state, best_mix = None, Mixture()
        started, step = time.perf_counter(), 0
        if init is not None and validator is not None:
            metrics, best_mix, alone = validator.evaluate(model)
            best_ndcg, best_rnn = metrics["ndcg"], alone["ndcg"]
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
            log(f"epoch 0 (warm start) valid ndcg@{config.eval_k} {best_ndcg:.4f} (rnn alone {best_rnn:.4f})")
        for epoch in range(1, config.epochs + 1):
            t0 = time.perf_counter()
            model.train()
            total, positions = 0.0, 0
            task = f"epoch {epoch}/{config.epochs}"
            for done, batch in enumerate(make_batches(windows, config.batch_size, rng), 1):
                for group in opt.param_groups:
                    group["lr"] = lr_at(step, total_steps, config)
                step += 1
                vectors = model.item_vectors()
                states, _ = model(batch.inputs, vectors)
                mask = batch.targets > 0  # padding predicts nothing and costs no logits
                targets, weights = future_targets(batch.targets, config.horizon, config.horizon_decay)
                loss = _loss(model, states[mask], targets[mask], vectors,
                             config.sampled_softmax, sampler, dtype, weights[mask])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                opt.step()
                n_pos = int(mask.sum())
                total += loss.item() * n_pos
                positions += n_pos
                if progress is not None:
                    progress(task, done, steps_per_epoch, {"loss": total / positions, "positions/s": positions / (
                        time.perf_counter() - t0)}, unit="batch")
            row = {"epoch": epoch, "train_loss": total / positions, "lr": opt.param_groups[0]["lr"]}
            train_seconds = time.perf_counter() - t0
            if validator is not None:
                metrics, mix, alone = validator.evaluate(model)
                row.update(valid_hit_rate=metrics["hit_rate"], valid_ndcg=metrics["ndcg"],
                           rnn_valid_hit_rate=alone["hit_rate"], rnn_valid_ndcg=alone["ndcg"],
                           rnn_weight=mix.rnn_weight, smoothing=mix.smoothing, decay=mix.decay)
            else:
                metrics, alone, mix = {"ndcg": float(epoch)}, {"ndcg": float(epoch)}, Mixture()
                row.update(valid_hit_rate=None, valid_ndcg=None, rnn_valid_hit_rate=None, rnn_valid_ndcg=None)
            row["train_seconds"] = train_seconds
            row["seconds"] = time.perf_counter() - t0
            history.append(row)
            if progress is not None:
                valid = {} if row["valid_ndcg"] is None else {f"valid ndcg@{config.eval_k}": row["valid_ndcg"],
                                                               f"valid hit@{config.eval_k}": row["valid_hit_rate"]}
                progress(task, steps_per_epoch, steps_per_epoch, {"loss": row["train_loss"], "positions/s": positions
                                                                  / train_seconds, **valid}, unit="batch", final=True)
            shown = "-" if row["valid_ndcg"] is None else (
                f"{row['valid_ndcg']:.4f} (rnn alone {row['rnn_valid_ndcg']:.4f}, rnn weight {mix.rnn_weight})")
            log(f"epoch {epoch} loss {row['train_loss']:.4f} valid ndcg@{config.eval_k} {shown} "
                f"{row['seconds']:.1f}s")
            if metrics["ndcg"] > best_ndcg:
                best_ndcg, best_epoch, best_mix, last_gain = metrics["ndcg"], epoch, mix, epoch
                best_state = {k: v.clone() for k, v in model.state_dict().items()}
            if alone["ndcg"] > best_rnn:
                best_rnn, last_gain = alone["ndcg"], epoch
            if epoch - last_gain >= config.patience:
                log(f"early stop: neither the mixture nor the RNN alone improved on validation for "
                    f"{config.patience} epochs; keeping epoch {best_epoch}")
                break
            elapsed = time.perf_counter() - started
            if config.max_seconds is not None and elapsed + row["seconds"] > config.max_seconds \
                    and epoch < config.epochs:
                log(f"time budget of {config.max_seconds:.0f}s reached (max_seconds: the epoch count "
                    f"now depends on machine speed); keeping epoch {best_epoch}")
                break
        model.load_state_dict(best_state)
        model.eval()
    log(f"trained {len(history)} epochs in {time.perf_counter() - started:.1f}s "
        f"({dtype_name(dtype)} softmax matmuls, {config.threads} threads); keeping epoch {best_epoch}")
    return TrainResult(TrainedLM(catalogue, model, best_mix, config.window), history, best_epoch)
