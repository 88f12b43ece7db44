"""The network: a next-item language model with tied, content-aware item vectors, over a
recurrent cell (GRU, LSTM) or a causal self-attention one (``transformer``, transformer.py).

An item's vector is its own embedding (only for items seen in training) plus the mean of
its content-token embeddings (genres, tags), so an item with no training events still
has a vector. With text (``text_dim`` > 0, the sentence embeddings of ml.item_text_embeddings)
a learned projection of the item's text embedding is added too, and its bias gains a learned
function of the text: an item nobody interacted with is scored from what it is about. The same vectors embed the inputs and score the outputs (tied weights),
which halves the parameters and lets a next-item prediction be one matmul.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .transformer import CausalTransformer

CELLS = ("gru", "lstm", "transformer")


@dataclass(frozen=True)
class LMConfig:
    n_items: int
    n_tokens: int
    embedding_dim: int = 64
    hidden_dim: int = 128
    cell: str = "gru"
    layers: int = 1
    dropout: float = 0.2
    heads: int = 1  # transformer only: attention heads per block (layers = blocks)
    max_len: int = 0  # transformer only: positions (the longest window it reads)
    text_dim: int = 0  # the text embeddings' width (0: no text input)

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"LMConfig.cell: expected one of {CELLS}, found {self.cell!r}")
        if self.n_items < 1:
            raise ValueError(f"LMConfig.n_items: expected >= 1, found {self.n_items}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LMConfig.dropout: expected in [0, 1), found {self.dropout}")

    def to_dict(self) -> dict:
        return asdict(self)


def _dropout(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Inverted dropout (as F.dropout in training) with masks from ``generator``."""
    if p == 0.0:
        return x
    keep = torch.empty_like(x).bernoulli_(1.0 - p, generator=generator)
    return x * keep / (1.0 - p)


class ItemLM(nn.Module):
    def __init__(
        self,
        config: LMConfig,
        token_offsets: torch.Tensor,
        token_index: torch.Tensor,
        has_events: torch.Tensor,
        text_vectors: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        d, h = config.embedding_dim, config.hidden_dim
        self.item_embedding = nn.Embedding(config.n_items + 1, d, padding_idx=0)
        # one spare row so a catalogue without tokens still builds a valid EmbeddingBag
        self.token_embedding = nn.EmbeddingBag(config.n_tokens + 1, d, mode="mean")
        # the sequence cell keeps the name `rnn` whatever it is (checkpoints, MC dropout)
        if config.cell == "transformer":
            self.rnn = CausalTransformer(d, h, config.layers, config.heads, config.max_len, config.dropout)
        else:
            rnn = nn.GRU if config.cell == "gru" else nn.LSTM
            self.rnn = rnn(d, h, config.layers, batch_first=True,
                           dropout=config.dropout if config.layers > 1 else 0.0)
        self.to_item_space = nn.Linear(h, d)
        self.item_bias = nn.Parameter(torch.zeros(config.n_items + 1))
        self.drop = nn.Dropout(config.dropout)
        self.register_buffer("token_offsets", token_offsets.long().clone())
        self.register_buffer("token_index", token_index.long().clone())
        # [n_items + 1, 1]; 0 for padding and for items without training events, whose own
        # embedding would otherwise be a random vector the optimiser never shaped
        self.register_buffer("has_events", has_events.float().reshape(-1, 1).clone())
        # small tied vectors keep the initial logits near uniform
        nn.init.normal_(self.item_embedding.weight, std=0.1)
        nn.init.normal_(self.token_embedding.weight, std=0.1)
        if config.text_dim:
            if text_vectors is None or tuple(text_vectors.shape) != (config.n_items + 1, config.text_dim):
                found = None if text_vectors is None else tuple(text_vectors.shape)
                raise ValueError(f"ItemLM: expected text vectors of shape {(config.n_items + 1, config.text_dim)}, "
                                 f"found {found}")
            # [n_items + 1, text_dim]; zero rows for padding and items without a text
            self.register_buffer("text_vectors", text_vectors.float().clone())
            self.text_projection = nn.Linear(config.text_dim, d, bias=False)
            self.text_bias = nn.Linear(config.text_dim, 1, bias=False)
            nn.init.normal_(self.text_projection.weight, std=0.1)
            nn.init.zeros_(self.text_bias.weight)

    def item_vectors(self, keep: torch.Tensor | None = None) -> torch.Tensor:
        """[n_items + 1, d]; row 0 (padding) is zero. ``keep`` ([n_items + 1, 1], 0 or 1)
        drops the own embedding of the items it zeroes (training an item's content to stand
        for it alone, as it must for a new item)."""
        gate = self.has_events if keep is None else self.has_events * keep
        own = self.item_embedding.weight * gate
        if self.config.text_dim:
            own = own + self.text_projection(self.text_vectors)  # zero for a zero (absent) text
        if self.token_index.numel() == 0:
            return own
        content = self.token_embedding(self.token_index, self.token_offsets[:-1])
        return own + F.pad(content, (0, 0, 1, 0))

    def biases(self, keep: torch.Tensor | None = None, training: bool = False) -> torch.Tensor:
        """[n_items] output biases (padding excluded). Without text: the learned per-item bias.
        With text: the per-item bias of items with events (gated by ``keep`` as in
        ``item_vectors``) plus a learned function of the text; in ``training`` items without
        events are left out of the softmax (-inf): they are never a target, and as negatives
        they would teach the text half that an unseen item is an unlikely one."""
        if not self.config.text_dim:
            return self.item_bias[1:]
        gate = self.has_events if keep is None else self.has_events * keep
        bias = self.item_bias[1:] * gate[1:, 0] + self.text_bias(self.text_vectors[1:])[:, 0]
        if training:
            bias = bias.masked_fill(self.has_events[1:, 0] == 0, float("-inf"))
        return bias

    def forward(
        self, inputs: torch.Tensor, vectors: torch.Tensor | None = None, hidden=None
    ) -> tuple[torch.Tensor, object]:
        """States [B, T, d] in item space after each input, and the final hidden state."""
        vectors = self.item_vectors() if vectors is None else vectors
        x = self.drop(F.embedding(inputs, vectors))
        out, hidden = self._cell(x, inputs, hidden)
        return self.to_item_space(self.drop(out)), hidden

    def _cell(self, x: torch.Tensor, inputs: torch.Tensor, hidden=None):
        if self.config.cell == "transformer":
            return self.rnn(x, inputs != 0)
        return self.rnn(x, hidden)

    def last_states(self, inputs: torch.Tensor, last: torch.Tensor, vectors: torch.Tensor,
                    mc_generator: torch.Generator | None = None) -> torch.Tensor:
        """[B, d]: the item-space state after input ``last[b]`` of each row, as ``forward``
        gives it, with the output dropout drawn only for those positions (the masks of the
        other positions were 2/3 of MC dropout's cost).

        With ``mc_generator`` the input and output dropout are always drawn, from that
        generator and not torch's global one, whatever the module's mode (MC dropout that
        several threads can run at once, each deterministic); a multi-layer GRU's own
        between-layer dropout is then not drawn."""
        if mc_generator is None:
            drop = self.drop
        else:
            drop = lambda t: _dropout(t, self.config.dropout, mc_generator)  # noqa: E731
        x = drop(F.embedding(inputs, vectors))
        out, _ = self._cell(x, inputs)
        return self.to_item_space(drop(out[torch.arange(inputs.shape[0]), last]))

    def initial_state(self) -> torch.Tensor:
        """The item-space state before any event: what a user with no history gets."""
        return self.to_item_space(torch.zeros(self.config.hidden_dim, device=self.item_bias.device))

    def logits(self, states: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
        """[N, n_items] scores of every catalogue item (padding excluded)."""
        return torch.addmm(self.biases(), states, vectors[1:].T)


def fast_matmul_dtype(name: str = "auto") -> torch.dtype:
    """The dtype of the softmax matmuls: ``float32``, ``bfloat16``, or ``auto`` = bfloat16
    where the CPU multiplies it natively (AVX512-BF16 / AMX: 2-3x float32's rate), else
    float32. The softmax itself and every accumulation stay in float32."""
    if name == "float32":
        return torch.float32
    if name == "bfloat16":
        return torch.bfloat16
    if name != "auto":
        raise ValueError(f"matmul_dtype: expected 'auto', 'float32' or 'bfloat16', found {name!r}")
    try:
        native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        native = False
    return torch.bfloat16 if native else torch.float32


class _ChunkedSoftmaxCE(torch.autograd.Function):
    """Summed full-softmax cross-entropy of ``states @ vectors.T + bias``, computed in row
    chunks with the gradients formed during the forward pass.

    The [positions, catalogue] logits never exist whole: at MovieLens size they are
    ~100 MB per batch, and allocating, filling and softmaxing them costs more on a CPU
    than the matmuls themselves. Per chunk: one matmul for the logits, one fused softmax
    (a row of the catalogue fits in L1), the target's probability gives the loss
    (-log p, so no separate log-sum-exp pass), and ``softmax - onehot`` feeds the two
    gradient matmuls. The matmuls run in ``dtype`` (bfloat16 where native), the softmax
    and all sums in float32.
    """

    @staticmethod
    def forward(ctx, states, vectors, bias, targets, weights, chunk: int, dtype: torch.dtype):
        n_pos = states.shape[0]
        grad_states = torch.empty_like(states)
        grad_vectors = torch.zeros_like(vectors)
        grad_bias = torch.zeros_like(bias)
        total = torch.zeros((), dtype=torch.float64, device=states.device)
        low = dtype != torch.float32
        v, b, s_all = vectors.to(dtype), bias.to(dtype), states.to(dtype)
        vt = v.T
        for lo in range(0, n_pos, chunk):
            s, t, w = s_all[lo : lo + chunk], targets[lo : lo + chunk], weights[lo : lo + chunk]
            probs = torch.softmax(torch.addmm(b, s, vt), dim=1, dtype=torch.float32)
            p_t = probs.gather(1, t)
            total -= (w * p_t.clamp_min(1e-38).log()).sum().double()
            probs.scatter_add_(1, t, -w)  # d loss / d logits = softmax - target distribution
            grad_bias += probs.sum(0)
            if low:
                p = probs.to(dtype)
                grad_states[lo : lo + chunk] = p @ v
                grad_vectors += p.T @ s
            else:
                torch.mm(probs, v, out=grad_states[lo : lo + chunk])
                grad_vectors.addmm_(probs.T, s)
        ctx.save_for_backward(grad_states, grad_vectors, grad_bias)
        return total.to(states.dtype)

    @staticmethod
    def backward(ctx, grad_loss):
        g_states, g_vectors, g_bias = ctx.saved_tensors
        return g_states * grad_loss, g_vectors * grad_loss, g_bias * grad_loss, None, None, None, None


def full_softmax_loss(model: ItemLM, states: torch.Tensor, targets: torch.Tensor,
                      vectors: torch.Tensor, chunk: int = 256, dtype: torch.dtype = torch.float32,
                      weights: torch.Tensor | None = None, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Mean cross-entropy over the whole catalogue of next items ``targets`` (1-based, [P]),
    or of a target distribution: ``targets`` [P, K] (0 = none) with ``weights`` [P, K]
    (normalised per row), e.g. the next few items of the sequence. Every position needs
    at least one target."""
    if targets.ndim == 1:
        targets = targets.unsqueeze(1)
    if weights is None:
        weights = torch.ones(targets.shape, dtype=states.dtype, device=states.device)
    weights = torch.where(targets > 0, weights, 0.0).to(states.dtype)
    weights = weights / weights.sum(1, keepdim=True).clamp_min(1e-12)  # a distribution per position
    bias = model.item_bias[1:] if bias is None else bias
    total = _ChunkedSoftmaxCE.apply(states, vectors[1:], bias, (targets - 1).clamp_min(0),
                                    weights, chunk, dtype)
    return total / max(states.shape[0], 1)
