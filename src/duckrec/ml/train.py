"""The training loop: full-softmax next-item cross-entropy, early stopping on validation
NDCG@k, then the bigram mixture weight fitted on the same validation events.
"""
from __future__ import annotations

import copy
import math
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .model import ItemLM, LMConfig, fast_matmul_dtype, full_softmax_loss
from .ngram import fit_bigram, next_item_probs, ngram_parts
from .score import (
    NARROW_DEPTH, NARROW_ITEMS, Mixture, NarrowPool, TrainedLM, rank_metrics, rnn_probs, score_rows, unigram_top,
    user_states,
)
from .sequences import Catalogue, make_batches, training_windows
from .settings import TrainConfig  # noqa: F401 - imported from here too
from .threads import CoreMeter, pick_threads, scoring_heap


@dataclass
class TrainResult:
    lm: TrainedLM
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0


@contextmanager
def deterministic(seed: int, threads: int | None) -> Iterator[np.random.Generator]:
    """Seeded, deterministic torch on a fixed thread count; previous settings restored."""
    old_threads, old_det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(pick_threads(threads, follow_load=False))
    # CUDA has no deterministic kernel for some ops (scatter_add_): there it warns instead
    torch.use_deterministic_algorithms(True, warn_only=torch.cuda.is_available())
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield np.random.default_rng(seed)
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)


def _loss(model: ItemLM, states: torch.Tensor, targets: torch.Tensor, vectors: torch.Tensor,
          n_sampled: int, sampler: torch.Tensor | None, dtype: torch.dtype,
          weights: torch.Tensor | None = None, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``bias``: the [n_items] output biases (``model.biases``); default the model's own."""
    bias = model.biases() if bias is None else bias
    if not n_sampled:
        return full_softmax_loss(model, states, targets, vectors, dtype=dtype, weights=weights, bias=bias)
    targets = targets[:, 0] if targets.ndim == 2 else targets  # sampled: the next item only
    # shared negatives drawn from P(item)^0.75, with the logQ correction so the sampled
    # softmax estimates the full one; an accidental hit of the target is masked out
    negatives = torch.multinomial(sampler, n_sampled, replacement=True) + 1
    log_q = torch.log(sampler * n_sampled)
    pos = (states * vectors[targets]).sum(1) + bias[targets - 1] - log_q[targets - 1]
    neg = states @ vectors[negatives].T + bias[negatives - 1] - log_q[negatives - 1]
    neg = neg.masked_fill(negatives.unsqueeze(0) == targets.unsqueeze(1), float("-inf"))
    return F.cross_entropy(torch.cat([pos.unsqueeze(1), neg], 1), torch.zeros_like(targets))


RETHREAD_SECONDS = 5.0  # how often training re-counts the free cores
FULL_SOFTMAX_ITEMS = 10_000
# items x train positions of one epoch up to which "auto" keeps the full softmax on a bigger
# catalogue: 4e9 is about a minute an epoch at the 21 GFLOP/s the chunked softmax reached at
# 54.5k items on the 2-core workplace machine (bench_train.py --items 54542: 953 positions/s,
# load 1.5). Amazon Beauty (54.5k items x 233k positions = 1.3e10, 4 minutes an epoch) stays sampled.
FULL_SOFTMAX_BUDGET = 4e9
AUTO_NEGATIVES = 2048
MAX_LEN_QUANTILE, MAX_LEN_CAP = 0.95, 200


def context_length(setting: int | str, sequences: list[np.ndarray]) -> int:
    """The transformer's context for ``lm.max_len``: an int as it is; "auto": the
    ``MAX_LEN_QUANTILE`` quantile of the train sequence lengths, rounded up to a multiple of 8,
    at least 8 and at most ``MAX_LEN_CAP`` (SASRec's 50 on Beauty, 200 on MovieLens)."""
    if setting != "auto":
        if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
            raise ValueError(f"lm.max_len: expected 'auto' or an integer >= 1, found {setting!r}")
        return setting
    lengths = np.array([len(s) for s in sequences] or [1])
    q = float(np.quantile(lengths, MAX_LEN_QUANTILE))
    return int(min(MAX_LEN_CAP, max(8, 8 * math.ceil(q / 8))))
VALID_BLOCK = 1 << 26  # validation users x items per grid point; above it, a seeded sample of users


class _Validator:
    """NDCG@k on validation for every (rnn weight, smoothing) of the grid, in one pass.

    Users are scored a block at a time (``score_rows``), so memory never holds validation
    users x items; where they exceed ``VALID_BLOCK`` scores per grid point, a seeded
    sample of ``VALID_BLOCK / n_items`` users (at least ``min_users``) stands for them,
    which bounds the cost of an epoch's validation on big catalogues.
    """

    def __init__(self, histories: list[np.ndarray], targets: np.ndarray, n_items: int, config: TrainConfig,
                 log: Callable[[str], None] = print, min_users: int = 2000):
        self.config, self.n_items = config, n_items
        self.base = Mixture(1.0, 1.0, 1.0, config.ngram_context, config.ngram_distance, config.ngram_backward)
        # the n-gram half counts over every validation history, sampled or not
        self.bigram = fit_bigram(histories, n_items, max_distance=config.ngram_distance,
                                 backward_weight=config.ngram_backward)
        targets = np.asarray(targets)
        cap = max(min_users, VALID_BLOCK // max(n_items, 1))
        if len(histories) > cap:
            pick = np.sort(np.random.default_rng(config.seed).choice(len(histories), cap, replace=False))
            log(f"validation: a seeded sample of {cap} of {len(histories)} users ({n_items} items each)")
            histories, targets = [histories[i] for i in pick], targets[pick]
        self.histories, self.targets = histories, targets
        self.rows = score_rows(n_items)
        self.grid = [(s, d) for s in config.smoothings for d in config.decays]
        self.ngram_alone = None  # the n-gram alone does not change between epochs: ranked once
        self.narrow = n_items >= NARROW_ITEMS
        self.uni_top, self.uni_bound = unigram_top(self.bigram, NARROW_DEPTH)  # no other item's unigram is above it

    def _seen(self, lo: int, hi: int) -> torch.Tensor:
        part = self.histories[lo:hi]
        rows = np.concatenate([np.full(len(h), r) for r, h in enumerate(part)] + [np.zeros(0, np.int64)])
        cols = np.concatenate(list(part) + [np.zeros(0, np.int64)]) - 1
        seen = torch.zeros(len(part), self.n_items, dtype=torch.bool)
        seen[torch.from_numpy(rows.astype(np.int64)), torch.from_numpy(cols.astype(np.int64))] = True
        return seen

    def _top(self, scores: torch.Tensor) -> np.ndarray:
        # probabilities are >= 0: a seen item is set to -1, so it never ranks above an unseen one
        val, idx = torch.topk(scores, min(self.config.eval_k, scores.shape[1]), 1)
        return torch.where(val >= 0, idx + 1, 0).cpu().numpy()

    @scoring_heap()
    def evaluate(self, model: ItemLM, cold_weight: float = 0.0) -> tuple[dict[str, float], Mixture, dict[str, float]]:
        """(best metrics, its mixture, rnn-alone metrics); ``cold_weight``: as Mixture's."""
        config = self.config
        states = user_states(model, self.histories, config.window)
        mixed = [w for w in config.rnn_weights if 0 < w < 1]
        ranked: dict[tuple, list[np.ndarray]] = {}
        first = self.ngram_alone is None
        with torch.no_grad():
            vectors = model.item_vectors()
            for lo in range(0, len(self.histories), self.rows):
                hi = min(lo + self.rows, len(self.histories))
                seen = self._seen(lo, hi).to(vectors.device)
                rnn = rnn_probs(model, states[lo:hi], vectors, cold_weight).masked_fill_(seen, -1.0)
                ranked.setdefault(("rnn",), []).append(self._top(rnn))
                if self.narrow:
                    for key, top in self._narrow(lo, hi, rnn, seen, mixed, first).items():
                        ranked.setdefault(key, []).append(top)
                    continue
                for s, d in self.grid:
                    ngram = next_item_probs(self.bigram, self.histories[lo:hi], s, config.ngram_context, d)
                    ngram = ngram.to(vectors.device).masked_fill_(seen, -1.0)
                    if first:
                        ranked.setdefault(("ngram", s, d), []).append(self._top(ngram))
                    for w in mixed:  # ranks as w * rnn + (1 - w) * ngram; seen items stay negative
                        ranked.setdefault((w, s, d), []).append(self._top(torch.add(ngram, rnn, alpha=w / (1 - w))))
        k = config.eval_k
        metrics = {key: rank_metrics(np.concatenate(parts), self.targets, k) for key, parts in ranked.items()}
        if first:
            self.ngram_alone = {(s, d): metrics[("ngram", s, d)] for s, d in self.grid}
        alone = metrics[("rnn",)]
        best, best_mix = None, self.base
        for w in config.rnn_weights:
            for s, d in self.grid if w < 1 else [(1.0, 1.0)]:
                m = alone if w >= 1 else self.ngram_alone[(s, d)] if w <= 0 else metrics[(w, s, d)]
                if best is None or m["ndcg"] > best["ndcg"] + 1e-12:
                    best, best_mix = m, replace(self.base, rnn_weight=w, smoothing=s, decay=d,
                                                cold_weight=cold_weight)
        return best, best_mix, alone

    def _narrow(self, lo: int, hi: int, rnn: torch.Tensor, seen: torch.Tensor, mixed: list[float],
                first: bool) -> dict[tuple, np.ndarray]:
        """The top K of every mixture of the grid for users ``lo:hi``, ranked over a
        :class:`~duckrec.ml.score.NarrowPool` of candidates per user (the sequence model's
        and the unigram's top ``NARROW_DEPTH`` and the n-gram's support, the same for every
        smoothing and decay) instead of the whole catalogue; a user the pool's bound leaves
        unsure is ranked over every item, as before. ``rnn``: the block's probabilities with
        seen items at -1."""
        k = self.config.eval_k
        histories = self.histories[lo:hi]
        pool = NarrowPool.build(rnn, self.uni_top, self.uni_bound,
                                ngram_parts(self.bigram, histories, self.grid[0][0], self.config.ngram_context,
                                            self.grid[0][1]), seen, NARROW_DEPTH, k)
        rnn_flat = pool.rnn(rnn)
        out: dict[tuple, np.ndarray] = {}

        def top(flat: torch.Tensor, bound: torch.Tensor, dense) -> np.ndarray:
            val, items, unsure = pool.top(flat, bound, k)
            result = torch.where(val >= 0, items, 0).numpy()
            if unsure.size:  # ranked over the whole catalogue
                result[unsure] = self._top(dense(unsure))
            return result

        for s, d in self.grid:
            parts = ngram_parts(self.bigram, histories, s, self.config.ngram_context, d)
            ngram, uni_bound = pool.ngram(parts), pool.unigram_bound(parts)

            def dense_ngram(unsure, s=s, d=d):
                return next_item_probs(self.bigram, [histories[i] for i in unsure], s, self.config.ngram_context,
                                       d).masked_fill_(seen.cpu()[torch.from_numpy(unsure)], -1.0)

            if first:
                out[("ngram", s, d)] = top(ngram, uni_bound, dense_ngram)
            for w in mixed:
                alpha = w / (1 - w)
                out[(w, s, d)] = top(
                    torch.add(ngram, rnn_flat, alpha=alpha), torch.add(uni_bound, pool.rnn_bound, alpha=alpha),
                    lambda unsure, dense_ngram=dense_ngram, alpha=alpha: torch.add(
                        dense_ngram(unsure), rnn.cpu()[torch.from_numpy(unsure)], alpha=alpha))
        return out

    def choose_cold_weight(self, model: ItemLM, best: float, mixture: Mixture,
                           log: Callable[[str], None]) -> Mixture:
        """A text-aware model's share for the items without training events, by validation
        NDCG (ties keep the smaller share); ``best``/``mixture``: the kept epoch's at share 0."""
        if not model.config.text_dim or not bool((model.has_events[1:, 0] == 0).any()):
            return mixture
        ndcg, tried = best, []
        for share in self.config.cold_weights:
            if share <= 0:
                continue
            metrics, mix, _ = self.evaluate(model, share)
            tried.append(f"{share:g}: {metrics['ndcg']:.4f}")
            if metrics["ndcg"] > ndcg + 1e-12:
                ndcg, mixture = metrics["ndcg"], mix
        log(f"new items (no training events): share {mixture.cold_weight:g} of the sequence model's probability "
            f"(valid ndcg@{self.config.eval_k} at share 0: {best:.4f}; {', '.join(tried)})")
        return mixture


def resolve_device(name: str) -> torch.device:
    """``auto``: the first CUDA device when torch sees one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"lm.device: expected 'auto', 'cpu' or 'cuda[:N]', found {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"lm.device: {name!r} asked for, but torch sees no CUDA device here; use 'auto' or 'cpu'")
    return device


class StepLoss(torch.nn.Module):
    """One training step's loss, as a module: what DistributedDataParallel wraps."""

    def __init__(self, model: ItemLM, config: TrainConfig, negatives: int, sampler: torch.Tensor,
                 dtype: torch.dtype):
        super().__init__()
        self.model, self.config, self.negatives, self.dtype = model, config, negatives, dtype
        self.sampler = sampler

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean loss, predicted positions) of a batch."""
        model, keep = self.model, None
        if model.config.text_dim and self.config.text_dropout > 0:
            # items whose own embedding and bias sit out this step: their text and content
            # tokens must predict them alone, as they will for an item with no events
            keep = (torch.rand(model.config.n_items + 1, 1, device=inputs.device) >= self.config.text_dropout).float()
        vectors = model.item_vectors(keep)
        states, _ = model(inputs, vectors)
        mask = targets > 0  # padding predicts nothing and costs no logits
        future, weights = future_targets(targets, self.config.horizon, self.config.horizon_decay)
        loss = _loss(model, states[mask], future[mask], vectors, self.negatives, self.sampler,
                     self.dtype, weights[mask], model.biases(keep, training=True))
        return loss, mask.sum()


def softmax_negatives(setting: int | str, n_items: int, positions: int | None = None) -> int:
    """Shared negatives per batch (0 = the full softmax) for a ``sampled_softmax`` setting;
    ``positions``: the train positions of an epoch (None: unknown, the catalogue alone decides)."""
    if setting == "auto":
        full = n_items <= FULL_SOFTMAX_ITEMS or (positions is not None and n_items * positions <= FULL_SOFTMAX_BUDGET)
        return 0 if full else AUTO_NEGATIVES
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 0:
        raise ValueError(f"lm.sampled_softmax: expected 'auto', 0 (full softmax) or a number of negatives, "
                         f"found {setting!r}")
    return setting


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
    w = (future > 0).float() * torch.tensor([decay**k for k in range(horizon)], device=targets.device)
    return future, w / w.sum(-1, keepdim=True).clamp_min(1e-12)


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


class SpikeGuard:
    """Rolls training back when a batch's loss spikes, and halves the learning rate from then on.

    At 2M and 10M events the sampled-softmax RNN diverged after thousands of steps: the loss of
    a batch jumped from ~6 to ~80 within a few hundred steps and never came back (validation then
    gave the whole mixture to the n-gram half). A batch whose loss is above ``SPIKE`` x the
    recent average (an exponential average over ~100 batches, after the first ``WARM`` steps)
    is not applied: the model and the optimizer go back to the older of the last two snapshots
    (taken every ``EVERY`` steps, so at least that many steps before the spike) and every later
    step uses ``scale`` (halved per spike) x the scheduled learning rate. Nothing changes in a
    training without spikes, so its weights are bit for bit those of a training without the guard.
    """

    SPIKE, WARM, EVERY, DECAY = 1.5, 100, 250, 0.99

    def __init__(self, model: torch.nn.Module, opt: torch.optim.Optimizer):
        self.model, self.opt = model, opt
        self.scale, self.average, self.seen, self.spikes = 1.0, None, 0, 0
        self.snapshots: list[tuple[int, dict, dict]] = []

    def _snapshot(self, step: int) -> None:
        clone = lambda tree: copy.deepcopy(tree)  # noqa: E731 - tensors and Adam's state, detached copies
        self.snapshots = (self.snapshots + [(step, clone(self.model.state_dict()), clone(self.opt.state_dict()))])[-2:]

    def spiked(self, loss: float) -> bool:
        """Whether this batch's loss is a spike (or not finite)."""
        if not math.isfinite(loss):
            return bool(self.snapshots)
        return self.average is not None and self.seen >= self.WARM and loss > self.SPIKE * self.average \
            and bool(self.snapshots)

    def applied(self, step: int, loss: float) -> None:
        """Count a batch that was applied; snapshot every EVERY steps."""
        self.average = loss if self.average is None else self.DECAY * self.average + (1 - self.DECAY) * loss
        self.seen += 1
        if step % self.EVERY == 0 or not self.snapshots:
            self._snapshot(step)

    def roll_back(self) -> int:
        """Back to the older snapshot, learning rate halved; returns the snapshot's step."""
        step, model_state, opt_state = self.snapshots[0]
        self.model.load_state_dict(model_state)
        self.opt.load_state_dict(opt_state)
        self.snapshots = self.snapshots[:1]
        self.scale *= 0.5
        self.spikes += 1
        return step


class WeightAverage:
    """An exponential moving average of a model's floating-point parameters, updated after
    every applied step with decay ``min(decay, (1 + t) / (10 + t))`` (t: updates so far, so
    the random initialisation fades within a few steps). ``swapped`` puts the average into
    the model for validation and keeping, and the live weights back afterwards."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay, self.updates = decay, 0
        self.params = [p for p in model.parameters() if p.is_floating_point()]
        self.average = [p.detach().clone() for p in self.params]

    @classmethod
    def for_epochs(cls, model: torch.nn.Module, epochs: float, steps_per_epoch: int) -> "WeightAverage | None":
        """A time constant of ``epochs`` epochs (None when 0: no averaging)."""
        if epochs <= 0:
            return None
        return cls(model, math.exp(-1.0 / max(1.0, epochs * steps_per_epoch)))

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self.average, [p.detach() for p in self.params], 1.0 - d)

    @contextmanager
    def swapped(self) -> Iterator[None]:
        live = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for p, a in zip(self.params, self.average):
                p.copy_(a)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, w in zip(self.params, live):
                    p.copy_(w)


DIVERGED = 1.5  # an epoch's train loss this many times the lowest before it: training diverged


def divergence(history: list[dict]) -> str | None:
    """A warning when the train loss of an epoch rose to ``DIVERGED`` x the lowest loss of the
    epochs before it (the RNN blew up; validation then keeps an earlier epoch or gives the
    mixture to the n-gram half, so the tables stay sane but the RNN adds nothing), else None."""
    lowest, worst = None, None
    for row in history:
        loss = row.get("train_loss")
        if loss is None or not math.isfinite(loss):
            if loss is not None:
                worst = (row["epoch"], loss, lowest)
            continue
        if lowest is not None and loss > DIVERGED * lowest[1] and (worst is None or loss / lowest[1] > worst[1] / worst[2][1]):
            worst = (row["epoch"], loss, lowest)
        if lowest is None or loss < lowest[1]:
            lowest = (row["epoch"], loss)
    if worst is None or worst[2] is None:
        return None
    epoch, loss, (low_epoch, low) = worst
    last = history[-1]
    rnn = "" if last.get("rnn_valid_ndcg") is None else (
        f"; last epoch: RNN alone valid NDCG {last['rnn_valid_ndcg']:.4f}, rnn weight {last.get('rnn_weight')}")
    return (f"warning: training diverged: train loss {loss:.4g} in epoch {epoch} against {low:.4g} in epoch "
            f"{low_epoch}{rnn}. Validation keeps the best epoch and mixture, so the lists stay sane, but "
            f"the RNN may add nothing (docs/scaling.md: the RNN at scale)")


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
    world=None,
    *,
    init: dict[str, torch.Tensor] | None = None,
    windows: list[np.ndarray] | None = None,
    text: np.ndarray | None = None,
) -> TrainResult:
    """Train the LM on ``train_sequences`` (1-based item indices, one per user).

    ``world`` (from ``duckrec.ml.distributed``) makes this one process of a
    DistributedDataParallel job; every process validates the same weights the same way,
    so they agree on the mixture and on when to stop without talking.

    Every position predicts the next. After each epoch the state after each validation
    history predicts its target and the n-gram mixture weight is re-fitted; the epoch
    whose mixture has the best NDCG@k is kept. Training goes on while the mixture or the
    RNN alone still improves (``patience`` epochs without either stop it), at most
    ``epochs``. Without validation events the last epoch and the RNN alone are kept.

    Warm start (see warm.py): ``init`` is a state dict for this catalogue to start from,
    ``windows`` the training windows to use instead of every window of the sequences;
    the starting point itself is scored on validation first and kept if no epoch beats it.

    ``text`` ([n_items + 1, dim], row k + 1 for item k, zero rows for items without a text):
    the items' text embeddings, an input of their vectors and biases (model.py).

    ``progress(task, done, total, figures, unit=..., final=...)``, if given, hears of every
    batch (loss so far, positions per second) and, at each epoch's end, the validation figures.
    """
    n = catalogue.n_items
    if config.cell == "transformer":
        # its context replaces `window`: the positions it has, kept on a warm start
        max_len = (int(init["rnn.positions.weight"].shape[0]) if init is not None
                   else context_length(config.max_len, train_sequences))
        # batch_size counts windows of `window` events: a step keeps about the positions it has
        # with the recurrent cells, however long the transformer's windows are
        batch = max(1, round(config.batch_size * config.window / max_len))
        config = replace(config, window=max_len, batch_size=batch)
        log(f"transformer: context of {max_len} events (lm.max_len: {config.max_len}), {batch} windows a batch")
        if windows is not None:  # never longer than the positions it has
            windows = training_windows(windows, max_len)
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
                         config.cell, config.layers, config.dropout, config.heads,
                         config.window if config.cell == "transformer" else 0,
                         0 if text is None else int(text.shape[1]))
    if text is not None and text.shape[0] != n + 1:
        raise ValueError(f"train_lm: expected text embeddings for {n + 1} rows (padding + {n} items), "
                         f"found {text.shape[0]}")
    text_vectors = None if text is None else torch.from_numpy(np.asarray(text, dtype=np.float32))
    validator = _Validator(valid_histories, valid_targets, n, config, log) if len(valid_targets) else None
    if not windows:
        # Defined fallback: nothing to learn from, so the RNN stays at its seeded
        # initialisation with no weight, and scores come from the n-gram half alone,
        # which backs off to item popularity.
        with deterministic(config.seed, config.threads):
            model = ItemLM(lm_config, torch.from_numpy(catalogue.token_offsets),
                           torch.from_numpy(catalogue.token_index), torch.from_numpy(counts > 0), text_vectors)
        model.eval()
        log(f"no train transition in {len(train_sequences)} train sequences: the RNN is left untrained "
            "and the lm strategy scores with the n-gram component alone (popularity where it has no pairs)")
        mixture = Mixture(0.0, 1.0, 1.0, config.ngram_context, config.ngram_distance, config.ngram_backward)
        return TrainResult(TrainedLM(catalogue, model, mixture, config.window), [], 0)
    dtype = fast_matmul_dtype(config.matmul_dtype)
    negatives = softmax_negatives(config.sampled_softmax, n, sum(len(w) - 1 for w in windows))
    if negatives and config.sampled_softmax == "auto":
        log(f"{n} items: sampled softmax with {negatives} shared negatives per batch (lm.sampled_softmax: auto)")
    steps_per_epoch = -(-len(windows) // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    history: list[dict] = []
    device = world.device if world is not None else resolve_device(config.device)
    with deterministic(config.seed, config.threads) as rng:
        model = ItemLM(lm_config, torch.from_numpy(catalogue.token_offsets),
                       torch.from_numpy(catalogue.token_index), torch.from_numpy(counts > 0), text_vectors)
        if init is not None:
            model.load_state_dict(init)
        model.to(device)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        sampler = torch.from_numpy(counts[1:].astype(np.float64) ** 0.75 + 1e-3).float()
        sampler = (sampler / sampler.sum()).to(device)
        step_loss = StepLoss(model, config, negatives, sampler, dtype)
        # with a world (duckrec.ml.distributed) each process takes every size-th batch and
        # DistributedDataParallel averages the gradients; the lr schedule counts its steps
        stepper = world.wrap(step_loss) if world is not None else step_loss
        if world is not None:
            total_steps = (steps_per_epoch // world.size or 1) * config.epochs
        best_ndcg, best_rnn, best_epoch, last_gain = -1.0, -1.0, 0, 0
        best_state, best_mix = None, Mixture()
        started, step = time.perf_counter(), 0
        # one process decides alone; DDP workers see different batches and would disagree
        guard = SpikeGuard(model, opt) if world is None else None
        averager = WeightAverage.for_epochs(model, config.average_epochs, steps_per_epoch)
        if init is not None and validator is not None:
            metrics, best_mix, alone = validator.evaluate(model)
            best_ndcg, best_rnn = metrics["ndcg"], alone["ndcg"]
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
            log(f"epoch 0 (warm start) valid ndcg@{config.eval_k} {best_ndcg:.4f} (rnn alone {best_rnn:.4f})")
        for epoch in range(1, config.epochs + 1):
            t0 = time.perf_counter()
            if world is None:  # the host's load changes; a worker keeps its share of the CPUs
                torch.set_num_threads(pick_threads(config.threads, follow_load=config.follow_load))
                meter, picked = CoreMeter(), time.perf_counter()
            model.train()
            total, positions = 0.0, 0
            task = f"epoch {epoch}/{config.epochs}"
            batches = make_batches(windows, config.batch_size, rng)
            for done, batch in enumerate(world.shard(batches) if world is not None else batches, 1):
                for group in opt.param_groups:
                    group["lr"] = lr_at(step, total_steps, config) * (guard.scale if guard is not None else 1.0)
                step += 1
                if world is None and config.follow_load and time.perf_counter() - picked > RETHREAD_SECONDS:
                    torch.set_num_threads(pick_threads(config.threads, meter=meter))
                    picked = time.perf_counter()
                loss, n_pos = stepper(batch.inputs.to(device), batch.targets.to(device))
                value = loss.item()
                if guard is not None and guard.spiked(value):
                    back = guard.roll_back()
                    log(f"loss spike at step {step}: {value:.3g} against {guard.average:.3g} on average; "
                        f"back to step {back}, learning rate x {guard.scale:g} from now on")
                    continue
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                opt.step()
                if guard is not None:
                    guard.applied(step, value)
                if averager is not None:
                    averager.update()
                n_pos = int(n_pos)
                total += value * n_pos
                positions += n_pos
                if progress is not None:
                    progress(task, done, steps_per_epoch, {"loss": total / positions, "positions/s": positions / (
                        time.perf_counter() - t0)}, unit="batch")
            if world is not None:
                total, positions = world.all_sum(total, positions)
            row = {"epoch": epoch, "train_loss": total / positions if positions else float("nan"),
                   "lr": opt.param_groups[0]["lr"]}
            train_seconds = time.perf_counter() - t0
            # validated and kept: the weights' moving average where there is one
            with averager.swapped() if averager is not None else nullcontext():
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
            over = config.max_seconds is not None and elapsed + row["seconds"] > config.max_seconds
            if world is not None and config.max_seconds is not None:  # every process stops together
                over = world.all_sum(float(over))[0] > 0
            if over and epoch < config.epochs:
                log(f"time budget of {config.max_seconds:.0f}s reached (max_seconds: the epoch count "
                    f"now depends on machine speed); keeping epoch {best_epoch}")
                break
        if best_state is not None:  # else: no epoch and no validation, the starting point stays
            model.load_state_dict(best_state)
        model.to("cpu").eval()
        if validator is not None:
            best_mix = validator.choose_cold_weight(model, best_ndcg, best_mix, log)
    warning = divergence(history)
    if warning:
        log(warning)
    log(f"trained {len(history)} epochs in {time.perf_counter() - started:.1f}s "
        f"({dtype_name(dtype)} softmax matmuls, up to {pick_threads(config.threads, follow_load=False)} threads, "
        f"{device}); keeping epoch {best_epoch}")
    return TrainResult(TrainedLM(catalogue, model, best_mix, config.window), history, best_epoch)
