"""Scoring: user states times item vectors, mixed with the bigram, history excluded, top-K.

``TrainedLM`` is everything a score depends on (catalogue, weights, mixture), and
round-trips through bytes, so a checkpoint stored in the warehouse reproduces the scores.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .model import ItemLM, LMConfig
from .ngram import Bigram, NgramParts, fit_bigram, next_item_probs, ngram_parts
from .sequences import Catalogue, pad_histories
from .threads import scoring_heap, torch_threads


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
    # text-aware LM only (model.py): the share of P_rnn given to the items without training
    # events (a new item), which it ranks among themselves by their text; chosen on validation
    cold_weight: float = 0.0

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
        model = ItemLM(LMConfig(**blob["config"]), weights["token_offsets"], weights["token_index"], weights["has_events"],
                       weights.get("text_vectors"))
        model.load_state_dict(weights)
        model.eval()
        return cls(cat, model, Mixture(**blob["mixture"]), blob["context"])


FIT = "fit"  # the ngram= default of the scoring functions: count the n-grams here


SCORE_BLOCK = 1 << 22  # users x items scored at once (16 MB of float32); memory never grows with users x items


def score_rows(n_items: int, block: int = SCORE_BLOCK) -> int:
    """How many users to score at a time against ``n_items`` items."""
    return max(8, min(1024, block // max(n_items, 1)))


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
        states, _ = model(inputs.to(out.device), vectors)
        out[torch.from_numpy(rows).to(out.device)] = states[torch.arange(len(rows)), lens.to(out.device) - 1]
    return out


def rnn_probs(model: ItemLM, states: torch.Tensor, vectors: torch.Tensor, cold_weight: float = 0.0) -> torch.Tensor:
    """[U, n_items] the sequence model's next-item probabilities.

    Without text: the softmax over the catalogue. A text-aware model (``text_dim`` > 0) never
    saw its items without training events in a softmax (they were never a target), so their
    logits are on no common scale with the others: the items with events share ``1 -
    cold_weight`` of the probability by their softmax among themselves, the items without
    share ``cold_weight`` by theirs (0: they are never recommended)."""
    logits = model.logits(states, vectors)
    if not model.config.text_dim:
        return torch.softmax(logits, dim=1)
    cold = model.has_events[1:, 0] == 0
    warm = torch.softmax(logits.masked_fill(cold, float("-inf")), dim=1)
    if cold_weight <= 0 or not bool(cold.any()):
        return warm.nan_to_num_(0.0)
    fresh = torch.softmax(logits.masked_fill(~cold, float("-inf")), dim=1)
    return torch.add(warm.nan_to_num_(0.0) * (1.0 - cold_weight), fresh, alpha=cold_weight)


# From this catalogue size on, validation ranks each mixture of its grid over a few candidates
# per user (NarrowPool), not over every item: the same top K, checked per user against a bound.
# (The served top N = 600 is not cheaper this way: its pool is most of the cost again.)
NARROW_ITEMS = 20_000
NARROW_DEPTH = 128  # the candidates: the sequence model's and the unigram's top items, and the n-gram's support


@dataclass
class NarrowPool:
    """A few candidate items per user where a mixture ``w * rnn + (1 - w) * ngram``'s top k
    must lie, or the bound says otherwise: the sequence model's top ``depth`` items, the
    unigram's top ``depth`` and the n-gram's support (every item the user's recent items'
    counts reach), less the excluded ones. Outside them an item's n-gram probability is its
    unigram share alone (:class:`~duckrec.ml.ngram.NgramParts`), so no item outside scores
    above the mixture of the model's ``depth``-th probability and the user's unigram weight
    times the unigram's ``depth``-th share (:meth:`bound`); a user whose k-th candidate is
    not strictly above it is ranked over every item."""

    rows: np.ndarray  # per candidate: its user (0-based row) ...
    items: np.ndarray  # ... and its item (0-based), sorted by (row, item)
    width: int
    rnn_bound: torch.Tensor  # [U] the model's depth-th probability per user
    uni_bound: float  # the unigram's depth-th share

    @classmethod
    def build(cls, rnn: torch.Tensor, unigram_top: np.ndarray, uni_bound: float, support: NgramParts,
              excluded: torch.Tensor, depth: int, min_width: int) -> NarrowPool:
        """``rnn`` [U, n] the model's probabilities with excluded items below every other;
        ``excluded`` [U, n] bool; ``unigram_top`` the unigram's top ``depth`` items (0-based)."""
        users, n = rnn.shape
        depth = min(depth, n)
        r_val, r_idx = torch.topk(rnn, depth, 1)
        rows = np.arange(users, dtype=np.int64)
        keys = np.unique(np.concatenate([
            np.repeat(rows, depth) * n + r_idx.cpu().numpy().reshape(-1),
            np.repeat(rows, unigram_top.size) * n + np.tile(unigram_top, users),
            support.rows * n + support.items - 1,
        ]))
        ex_rows, ex_cols = torch.nonzero(excluded.cpu(), as_tuple=True)
        keys = keys[~np.isin(keys, ex_rows.numpy().astype(np.int64) * n + ex_cols.numpy())]
        key_rows = keys // n
        counts = np.bincount(key_rows, minlength=users)
        return cls(key_rows, keys % n, max(int(counts.max()) if users else 0, min_width, 1),
                   r_val[:, -1].float().cpu(), uni_bound)

    def ngram(self, parts: NgramParts) -> torch.Tensor:
        """The n-gram probability of every candidate (float32, as the dense one)."""
        return torch.from_numpy(parts.at(self.rows, self.items + 1))

    def rnn(self, rnn: torch.Tensor) -> torch.Tensor:
        return rnn.cpu()[torch.from_numpy(self.rows), torch.from_numpy(self.items)]

    def unigram_bound(self, parts: NgramParts) -> torch.Tensor:
        """[U] the highest n-gram probability an item outside the candidates can have."""
        return torch.from_numpy((parts.uni_weight * self.uni_bound).astype(np.float32))

    def top(self, flat: torch.Tensor, bound: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """(values [U, k], 1-based items [U, k] (0 past the candidates), rows whose k-th value
        is not strictly above ``bound``: rank those over every item)."""
        users = bound.shape[0]
        starts = np.searchsorted(self.rows, np.arange(users))
        cols = torch.from_numpy(np.arange(self.rows.size) - starts[self.rows])
        rows = torch.from_numpy(self.rows)
        scores = torch.full((users, self.width), float("-inf"), dtype=flat.dtype)
        scores[rows, cols] = flat
        grid = torch.zeros(users, self.width, dtype=torch.int64)
        grid[rows, cols] = torch.from_numpy(self.items + 1)
        val, pos = torch.topk(scores, min(k, self.width), 1)
        items = torch.where(torch.isfinite(val), grid.gather(1, pos), 0)
        unsure = np.flatnonzero(~(val[:, -1] > bound).numpy()) if k <= self.width else np.arange(users)
        return val, items, unsure


def unigram_top(bigram: Bigram, depth: int) -> tuple[np.ndarray, float]:
    """The unigram's top ``depth`` items (0-based) and the ``depth``-th share."""
    unigram = bigram.unigram[1:]
    top = np.argsort(-unigram, kind="stable")[: min(depth, unigram.size)].astype(np.int64)
    return top, float(unigram[top[-1]]) if top.size else 0.0


def next_item_scores(lm: TrainedLM, states: torch.Tensor, histories: list[np.ndarray], bigram: Bigram | None) -> torch.Tensor:
    """[U, n_items] mixed next-item probabilities for users with these states and histories."""
    with torch.no_grad():
        probs = rnn_probs(lm.model, states, lm.model.item_vectors(), lm.mixture.cold_weight)
    w = lm.mixture.rnn_weight
    if bigram is None or w >= 1.0:
        return probs
    mix = lm.mixture
    return w * probs + (1.0 - w) * next_item_probs(bigram, histories, mix.smoothing, mix.context, mix.decay)


def _exclude(scores: torch.Tensor, exclude: list[np.ndarray]) -> None:
    rows = np.concatenate([np.full(len(e), r) for r, e in enumerate(exclude)] + [np.zeros(0, np.int64)])
    cols = np.concatenate([np.asarray(e, dtype=np.int64) for e in exclude] + [np.zeros(0, np.int64)]) - 1
    scores[torch.from_numpy(rows.astype(np.int64)), torch.from_numpy(cols)] = float("-inf")


@scoring_heap()
def top_k(
    lm: TrainedLM,
    histories: list[np.ndarray],
    k: int,
    *,
    exclude: list[np.ndarray] | None = None,
    bigram_sequences: list[np.ndarray] | None = None,
    chunk_size: int | None = None,
    progress: Callable[..., None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` items per user: (1-based item indices [U, k], scores [U, k]), best first.

    ``exclude`` (default: the histories) are never returned; where fewer than ``k`` items
    remain the tail holds index 0 and score -inf. The bigram half of the mixture is
    counted over ``bigram_sequences`` (default: the histories themselves), i.e. over the
    events that are history at scoring time. Users are scored ``chunk_size`` at a time
    (default: as many as keep a block near 4M scores), so memory does not grow with
    users x items. ``progress(task, done, total, unit=...)`` hears of each chunk of users scored.
    :func:`iter_top_k` gives the same chunk by chunk, for callers that write as they go.
    """
    items = np.zeros((len(histories), k), dtype=np.int64)
    scores = np.full((len(histories), k), float("-inf"))
    for start, chunk_items, chunk_scores in iter_top_k(lm, histories, k, exclude=exclude,
                                                        bigram_sequences=bigram_sequences,
                                                        chunk_size=chunk_size, progress=progress):
        items[start : start + len(chunk_items)] = chunk_items
        scores[start : start + len(chunk_items)] = chunk_scores
    return items, scores


def iter_top_k(
    lm: TrainedLM,
    histories: list[np.ndarray],
    k: int,
    *,
    exclude: list[np.ndarray] | None = None,
    bigram_sequences: list[np.ndarray] | None = None,
    chunk_size: int | None = None,
    progress: Callable[..., None] | None = None,
    ngram: Bigram | None | str = FIT,
):
    """:func:`top_k` one chunk of users at a time: yields (first user, items [n, k],
    scores [n, k]), so the whole [U, k] result is never held (at 600 candidates and 150k
    users it is 1.4 GB). Hold :func:`~duckrec.ml.threads.scoring_heap` around the loop, as
    :func:`top_k` does. ``ngram`` is the n-gram half already counted
    (``lm.mixture.fit_ngram(sequences, n_items)``, None for none): callers that score a
    purpose's users in several calls count it once, over all of them."""
    if k < 1:
        raise ValueError(f"top_k: expected k >= 1, found {k}")
    exclude = histories if exclude is None else exclude
    if len(exclude) != len(histories):
        raise ValueError(f"top_k: expected one exclusion list per history, found {len(exclude)} for {len(histories)}")
    n = lm.catalogue.n_items
    bigram = (lm.mixture.fit_ngram(histories if bigram_sequences is None else bigram_sequences, n)
              if isinstance(ngram, str) else ngram)
    states = user_states(lm.model, histories, lm.context)
    kk = min(k, n)
    chunk_size = chunk_size or score_rows(n)
    for start in range(0, len(histories), chunk_size):
        stop = min(start + chunk_size, len(histories))
        items = np.zeros((stop - start, k), dtype=np.int64)
        scores = np.full((stop - start, k), float("-inf"))
        s = next_item_scores(lm, states[start:stop], histories[start:stop], bigram)
        _exclude(s, exclude[start:stop])
        val, idx = torch.topk(s, kk, dim=1)
        del s
        items[:, :kk] = (idx + 1).numpy()
        scores[:, :kk] = val.double().numpy()
        items[~np.isfinite(scores)] = 0
        if progress is not None:
            progress("scoring", stop, len(histories), unit="user", final=stop == len(histories))
        yield start, items, scores


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


@scoring_heap()
def score_candidates_mc(
    lm: TrainedLM,
    histories: list[np.ndarray],
    candidates: np.ndarray,
    *,
    passes: int = 20,
    seed: int = 0,
    bigram_sequences: list[np.ndarray] | None = None,
    threads: int | None = 1,
    batch_size: int = 512,
    progress: Callable[..., None] | None = None,
    ngram: Bigram | None | str = FIT,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std [U, C] of the mixed probability of each (user, candidate) over
    ``passes`` forward passes with dropout on (MC dropout): an uncertainty the
    re-rankers can explore with.

    ``histories`` are 1-based item indices; the n-gram half of the mixture is counted over
    ``bigram_sequences`` (default: the histories, as in ``recs.lm_candidates``), or given
    already counted as ``ngram`` (see :func:`iter_top_k`).
    ``candidates`` are 1-based item indices, 0 pads (mean and std 0). The std is the
    unbiased (n - 1) one, as ``torch.std``. Each pass runs the users in ``_states``'s order
    and batches, drawing the input and output dropout (``ItemLM.last_states``) from a
    generator seeded by ``seed``, not torch's global one: calls in several threads at once
    give what they give one after the other. It is faster than a plain per-pass loop:

    - the n-gram half has no dropout, so it is counted once, not per pass, and only its
      candidate columns are kept; the passes only redo the recurrent half;
    - the item vectors (no dropout either) are built once; with ``rnn_weight`` 0 no pass
      is run at all (the std is exactly 0);
    - torch runs on ``threads`` threads (default 1) inside the call; None leaves torch's
      count as it is (callers that run several calls in threads set it once). The GRU's
      per-step parallel regions make two threads on a two-core machine 10-50x *slower* as
      soon as another process holds one core; one thread is as fast on a quiet machine and
      does not collapse under load.

    The global torch RNG, thread count and the model's train/eval mode are left as they
    were; a multi-layer GRU in training mode is put in eval mode for the call (its
    between-layer dropout is not drawn), so call it in threads with the model in eval mode.
    ``progress(task, done, total, unit=...)`` hears of each pass.
    """
    cand = np.asarray(candidates, dtype=np.int64)
    if cand.ndim != 2 or cand.shape[0] != len(histories):
        raise ValueError(f"score_candidates_mc: expected candidates [{len(histories)}, C], found {cand.shape}")
    if passes < 2:
        raise ValueError(f"score_candidates_mc: expected passes >= 2 for a std, found {passes}")
    n_users, width = cand.shape
    if n_users == 0 or width == 0:
        return np.zeros(cand.shape), np.zeros(cand.shape)
    histories = list(histories)
    pick = torch.from_numpy(np.clip(cand - 1, 0, None))
    mixture = lm.mixture
    w = float(mixture.rnn_weight)
    bigram = (mixture.fit_ngram(histories if bigram_sequences is None else list(bigram_sequences),
                                lm.catalogue.n_items) if isinstance(ngram, str) else ngram)
    fixed = None  # the n-gram half of each candidate's probability, weighted
    w_rnn = 1.0
    step = score_rows(lm.catalogue.n_items)
    if bigram is not None and w < 1.0:
        fixed = torch.empty(n_users, width, dtype=torch.float64)
        for lo in range(0, n_users, step):
            ngram_probs = _ngram_at(bigram, histories[lo : lo + step], mixture, pick[lo : lo + step])
            fixed[lo : lo + step] = ((1.0 - w) * ngram_probs).double()
        w_rnn = w
    if w_rnn == 0.0:
        # a pure n-gram mixture (validation can pick rnn_weight 0): dropout changes nothing,
        # so no pass is run; the std is exactly 0, as every pass would give the same number
        mean = fixed.numpy().copy()
        mean[cand == 0] = 0.0
        return mean, np.zeros(cand.shape)
    # the batches of _states: users by descending context length, empty histories keep the
    # initial state
    context = lm.context
    lengths = np.array([min(len(h), context or len(h)) for h in histories])
    order = np.argsort(-lengths, kind="stable")
    order = order[lengths[order] > 0]
    batches = []
    for start in range(0, order.size, batch_size):
        rows = order[start : start + batch_size]
        inputs, lens = pad_histories([np.asarray(histories[i]) for i in rows], context)
        batches.append((torch.from_numpy(rows), inputs, lens - 1))
    model = lm.model
    gru_training = model.rnn.training
    total = torch.zeros(n_users, width, dtype=torch.float64)
    total_sq = torch.zeros(n_users, width, dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad(), torch_threads(threads) if threads else contextlib.nullcontext():
        if gru_training:
            model.rnn.eval()  # dropout comes from last_states' generator only
        try:
            vectors = model.item_vectors()
            initial = model.initial_state()
            # big catalogues: each pass scores the head items and a sample of the rest; its own
            # generator, so the dropout masks are those of the exact passes
            split = _HeadAndTail.of(lm, histories, vectors, pick, cand > 0, seed)
            for done in range(1, passes + 1):
                states = initial.expand(n_users, -1).clone()
                for rows, inputs, last in batches:
                    states[rows] = model.last_states(inputs, last, vectors, mc_generator=generator)
                draw = torch.empty(n_users, width, dtype=torch.float64)
                if split is not None:
                    for lo in range(0, n_users, split.step):
                        draw[lo : lo + split.step] = split.probs(states[lo : lo + split.step], lo).double()
                for lo in range(0, n_users if split is None else 0, step):  # never users x items at once
                    probs = rnn_probs(model, states[lo : lo + step], vectors, lm.mixture.cold_weight)
                    draw[lo : lo + step] = torch.gather(probs, 1, pick[lo : lo + step]).double()
                draw *= w_rnn
                if fixed is not None:
                    draw = draw + fixed
                total += draw
                total_sq += draw * draw
                if progress is not None:
                    progress("MC dropout", done, passes, unit="pass", final=done == passes)
        finally:
            if gru_training:
                model.rnn.train()
    mean = total / passes
    # the unbiased (n - 1) std, as torch.std; clipped at 0 against rounding
    var = ((total_sq - passes * mean * mean) / (passes - 1)).clamp(min=0.0)
    mean, std = mean.numpy(), var.sqrt().numpy()
    mean[cand == 0], std[cand == 0] = 0.0, 0.0
    return mean, std


def _ngram_at(bigram: Bigram, histories: list[np.ndarray], mixture: Mixture, pick: torch.Tensor) -> torch.Tensor:
    """[U, C] the n-gram probabilities of the 0-based items ``pick`` [U, C]: the values of
    :func:`~duckrec.ml.ngram.next_item_probs` at those items, without the users x items matrix."""
    n = bigram.n_items
    users, width = pick.shape
    keys = np.repeat(np.arange(users, dtype=np.int64), width) * n + pick.numpy().reshape(-1)
    unique, inverse = np.unique(keys, return_inverse=True)
    parts = ngram_parts(bigram, histories, mixture.smoothing, mixture.context, mixture.decay)
    return torch.from_numpy(parts.at(unique // n, unique % n + 1)[inverse].reshape(users, width))


MC_SPLIT_ITEMS = NARROW_ITEMS  # from this catalogue size on, MC dropout's softmax is split (_HeadAndTail)
MC_HEAD_ITEMS = 128  # per user: the deterministic model's top items, scored exactly on every pass
MC_TAIL_ITEMS = 4096  # per pass and block of users: items drawn uniformly to estimate the rest's mass
MC_GATHERED_BYTES = 256 << 20  # the heads' item vectors kept from pass to pass, per call


@dataclass
class _HeadAndTail:
    """Each MC-dropout pass's softmax over a big catalogue (``MC_SPLIT_ITEMS`` and more)
    without scoring every item on every pass. The normaliser of a pass is split in two:

    - the **head**, summed exactly: the user's candidates and the deterministic (no
      dropout) model's top ``MC_HEAD_ITEMS`` items;
    - the **tail**, every other item, estimated from ``MC_TAIL_ITEMS`` items drawn
      uniformly without replacement per pass (shared by a block of users; an item of a
      user's head counts 0 in that user's sum): ``n / m`` times their summed mass, an
      unbiased estimate.

    A candidate's own mass is always in its normaliser, so no probability exceeds 1 however
    far a dropout pass moves the user's distribution (an importance sample drawn from the
    deterministic softmax alone missed that mass on Amazon Beauty and overflowed). The
    head holds most of the mass where the estimate matters; measured against exact passes
    on Beauty in the README. A text-aware model that gives items without events a share
    (``cold_weight`` > 0: two softmaxes) stays exact; one that gives them none samples
    its tail among the items with events only."""

    vectors: torch.Tensor
    bias: torch.Tensor
    head: torch.Tensor  # [U, K] 0-based head items per user, sorted; -1 pads
    at: torch.Tensor  # [U, C] the position of each candidate in its user's head
    pool: torch.Tensor  # the 0-based items the tail is drawn from (every item, or those with events)
    generator: torch.Generator
    step: int = 256
    gathered: dict = field(default_factory=dict)  # first user of a chunk -> its head's vectors and biases

    @classmethod
    def of(cls, lm: TrainedLM, histories: list[np.ndarray], vectors: torch.Tensor, pick: torch.Tensor,
           real: np.ndarray, seed: int) -> "_HeadAndTail | None":
        model = lm.model
        n = lm.catalogue.n_items
        if n < MC_SPLIT_ITEMS:
            return None
        bias = model.biases()
        pool = torch.arange(n)
        if model.config.text_dim:
            cold = model.has_events[1:, 0] == 0
            if bool(cold.any()):
                if lm.mixture.cold_weight > 0:
                    return None
                bias = bias.masked_fill(cold, float("-inf"))
                pool = pool[~cold]
        candidates = pick.masked_fill(torch.from_numpy(~real), -1)
        states = (user_states if model.training else _states)(model, histories, lm.context, 512)
        depth = min(MC_HEAD_ITEMS, n)
        heads, ats = [], []
        for lo in range(0, len(histories), score_rows(n)):
            rows = slice(lo, lo + score_rows(n))
            top = torch.topk(torch.addmm(bias, states[rows], vectors[1:].T), depth, dim=1).indices
            head, _ = torch.sort(torch.cat([candidates[rows], top], 1), dim=1)
            # a repeated item counts once: its later copies become -1 and sort to the front
            repeat = torch.zeros_like(head, dtype=torch.bool)
            repeat[:, 1:] = head[:, 1:] == head[:, :-1]
            head, _ = torch.sort(head.masked_fill(repeat, -1), dim=1)
            heads.append(head)
            ats.append(torch.searchsorted(head, candidates[rows].clamp(min=0)))
        return cls(vectors, bias, torch.cat(heads), torch.cat(ats), pool,
                   torch.Generator().manual_seed(seed + 1))

    def probs(self, states: torch.Tensor, lo: int) -> torch.Tensor:
        """[B, C] this pass's probabilities of the candidates of users ``lo:lo+B``."""
        head = self.head[lo : lo + states.shape[0]]
        if lo in self.gathered:  # the same users' head on every pass: gathered once
            vectors, bias = self.gathered[lo]
        else:
            items = head.clamp(min=0)
            vectors = F.embedding(items + 1, self.vectors)
            bias = self.bias[items].masked_fill(head < 0, float("-inf")).unsqueeze(2)
            if (len(self.gathered) + 1) * vectors.numel() * 4 <= MC_GATHERED_BYTES:
                self.gathered[lo] = vectors, bias
        logits = torch.baddbmm(bias, vectors, states.unsqueeze(2)).squeeze(2)
        top = logits.max(1, keepdim=True).values
        size = self.pool.numel()
        m = min(MC_TAIL_ITEMS, size)
        drawn = self.pool[torch.randperm(size, generator=self.generator)[:m]]  # without replacement
        tail = torch.addmm(self.bias[drawn], states, self.vectors[drawn + 1].T)
        # which drawn items are in each user's head: each head item's column among the drawn (m: none)
        column = torch.full((self.bias.numel() + 1,), m, dtype=torch.int64)
        column[drawn] = torch.arange(m)
        in_head = torch.zeros(head.shape[0], m + 1, dtype=torch.bool)
        in_head.scatter_(1, column[head.masked_fill(head < 0, self.bias.numel())], True)
        tail_mass = torch.exp(tail - top).masked_fill(in_head[:, :m], 0.0).sum(1, keepdim=True)
        total = torch.exp(logits - top).sum(1, keepdim=True) + tail_mass * (size / m)
        return torch.exp(torch.gather(logits, 1, self.at[lo : lo + states.shape[0]]) - top) / total


# Newest first; the id breaks a tie of two checkpoints trained in the same microsecond.
CHECKPOINT_ORDER = "trained_at desc, checkpoint_id desc"


def latest_checkpoint(checkpoints) -> TrainedLM:
    """The newest model of an ml.lm_checkpoints relation (a DuckDB relation), the one every
    reader of the table means by "the latest checkpoint"."""
    rows = checkpoints.order(CHECKPOINT_ORDER).limit(1).project("state").fetchall()
    if not rows:
        raise ValueError("expected a trained model in ml.lm_checkpoints, found none")
    return TrainedLM.from_bytes(bytes(rows[0][0]))
