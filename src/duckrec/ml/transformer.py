"""A SASRec-shaped causal self-attention cell, in the nanoGPT style: learned positions,
pre-norm blocks (attention, then a position-wise feed-forward), dropout, a causal mask and
a key padding mask, a final LayerNorm.

It is the ``transformer`` cell of ``ItemLM`` beside the GRU and the LSTM, with the same
call shape as theirs: ``cell(x, real)`` -> (outputs [B, T, width], None). Position ``t`` of a
row attends to positions ``<= t`` of that row that hold an item (``real``), so a later item
never changes an earlier output, and padding (on either side) changes no output of a real
position. Positions count from the first item of the window; a window holds at most
``max_len`` items.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class CausalSelfAttention(nn.Module):
    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        if width % heads:
            raise ValueError(f"transformer: expected hidden_dim divisible by heads, found {width} and {heads}")
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.resid_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.resid_drop(self.proj(y.transpose(1, 2).reshape(b, t, c)))


class Block(nn.Module):
    """x + attention(norm(x)), then x + feed-forward(norm(x)) (SASRec's point-wise FFN:
    width -> width, ReLU)."""

    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = CausalSelfAttention(width, heads, dropout)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(width, width), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), mask)
        return x + self.mlp(self.ln_2(x))


class CausalTransformer(nn.Module):
    """Item-space inputs [B, T, d_in] -> states [B, T, width]."""

    def __init__(self, d_in: int, width: int, layers: int, heads: int, max_len: int, dropout: float):
        super().__init__()
        if max_len < 1:
            raise ValueError(f"transformer: expected max_len >= 1, found {max_len}")
        self.max_len, self.width = max_len, width
        self.inp = nn.Linear(d_in, width) if d_in != width else nn.Identity()
        self.positions = nn.Embedding(max_len, width)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(width, heads, dropout) for _ in range(layers))
        self.ln_f = nn.LayerNorm(width)
        nn.init.normal_(self.positions.weight, std=0.02)
        for block in self.blocks:  # GPT-2's scaled init of the residual projections
            for proj in (block.attn.proj, block.mlp[3]):
                nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * layers))
                nn.init.zeros_(proj.bias)

    def forward(self, x: torch.Tensor, real: torch.Tensor | None = None, hidden=None) -> tuple[torch.Tensor, None]:
        """``real`` [B, T]: True where the position holds an item (default: everywhere)."""
        b, t, _ = x.shape
        if t > self.max_len:
            raise ValueError(f"transformer: expected at most max_len={self.max_len} positions, found {t}")
        pos = torch.arange(t, device=x.device)
        h = self.drop(self.inp(x) * math.sqrt(self.width) + self.positions(pos))
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        if real is None:
            mask = causal.expand(b, 1, t, t)
        else:  # a query never sees a padding key; it always sees itself (no empty softmax row)
            mask = (causal & real[:, None, None, :]) | torch.eye(t, dtype=torch.bool, device=x.device)
        for block in self.blocks:
            h = block(h, mask)
        return self.ln_f(h), None
