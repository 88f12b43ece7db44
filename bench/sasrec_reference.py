"""A SASRec+ reference on duckrec's own split: a measuring stick for the `lm` strategies, kept out
of the package (its own model and loop, plain PyTorch, nothing from duckrec.ml).

SASRec trained with full cross-entropy over the catalogue ("SASRec+", Klenitskiy and Vasilev,
RecSys 2023; github.com/antklen/sasrec-bert4rec-recsys23, src/configs/SASRec.yaml): item
embeddings tied to the output, learned positions, 2 pre-norm self-attention blocks of width 64,
1 head, dropout 0.1, Adam lr 1e-3, batches of 128 users, each user once an epoch as the last
max_len + 1 train items (max_len 50 on Beauty, 200 on MovieLens), at most 100 epochs, early
stopping on validation NDCG@10 with patience 10, the best epoch kept.

    PYTHONPATH=src python bench/sasrec_reference.py --warehouse warehouse.duckdb --max-len 200
    PYTHONPATH=src python bench/sasrec_reference.py --ratings /work/shared/data/amazon-beauty/ratings.csv

Validation: the train items predict the valid item; test: train + valid items predict the test
item; every item ranked, the user's history excluded, K = 10 (eval.metrics' holdout protocol).
--max-minutes time-boxes training (then the best epoch so far is tested, and the curve says where
it stood). Check `uptime` first: run times measure the load.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.checkpoint import checkpoint  # noqa: E402

from lm_split import load_split  # noqa: E402


class Block(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Dropout(dropout), nn.Linear(d, d), nn.Dropout(dropout))
        self.drop = nn.Dropout(dropout)

    def forward(self, x, causal, padding):
        h = self.ln1(x)
        x = x + self.drop(self.attn(h, h, h, attn_mask=causal, key_padding_mask=padding, need_weights=False)[0])
        return x + self.ff(self.ln2(x))


class SASRec(nn.Module):
    def __init__(self, n_items: int, max_len: int, d: int = 64, blocks: int = 2, heads: int = 1, dropout: float = 0.1):
        super().__init__()
        self.item = nn.Embedding(n_items + 1, d, padding_idx=0)
        self.pos = nn.Embedding(max_len, d)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d, heads, dropout) for _ in range(blocks))
        self.ln = nn.LayerNorm(d)
        for m in self.modules():  # SASRec+'s init: normal(0, 0.02), zero biases
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        with torch.no_grad():
            self.item.weight[0].zero_()

    def forward(self, inputs):  # [B, T] right-padded -> [B, T, d]
        t = inputs.shape[1]
        x = self.item(inputs) * math.sqrt(self.item.embedding_dim) + self.pos(torch.arange(t))
        x = self.drop(x) * (inputs > 0).unsqueeze(-1)
        causal = torch.ones(t, t, dtype=torch.bool).triu(1)  # True = not allowed
        padding = inputs == 0
        padding[:, 0] = False  # a row is never all padding (no empty softmax)
        for block in self.blocks:
            x = block(x, causal, padding)
        return self.ln(x)


def _ce(h, weight, targets):
    return F.cross_entropy(h @ weight[1:].T, targets - 1, reduction="sum")


def full_ce(h, weight, targets, chunk: int = 2048):
    """Summed cross-entropy over every item, ``chunk`` positions at a time (each chunk's logits
    recomputed in the backward pass, so memory holds one chunk's)."""
    return sum(checkpoint(_ce, h[i:i + chunk], weight, targets[i:i + chunk], use_reentrant=False)
               for i in range(0, len(h), chunk))


def pad(seqs, max_len):
    cut = [s[-max_len:] for s in seqs]
    block = np.zeros((len(cut), max(len(s) for s in cut)), dtype=np.int64)
    for i, s in enumerate(cut):
        block[i, :len(s)] = s
    return torch.from_numpy(block), torch.tensor([len(s) for s in cut])


@torch.no_grad()
def evaluate(model, histories, targets, k=10, batch=256, max_len=50):
    model.eval()
    ndcg = hit = 0.0
    for lo in range(0, len(histories), batch):
        hist = histories[lo:lo + batch]
        inputs, lens = pad(hist, max_len)
        h = model(inputs)[torch.arange(len(hist)), lens - 1]
        scores = h @ model.item.weight[1:].T
        for r, s in enumerate(hist):
            scores[r, torch.from_numpy(s - 1)] = -float("inf")
        top = torch.topk(scores, k, 1).indices.numpy() + 1
        match = top == targets[lo:lo + batch, None]
        found = match.any(1)
        hit += found.sum()
        ndcg += (found / np.log2(match.argmax(1) + 2)).sum()
    model.train()
    return ndcg / len(histories), hit / len(histories)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warehouse")
    ap.add_argument("--ratings")
    ap.add_argument("--max-len", type=int, default=50)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--blocks", type=int, default=2)
    ap.add_argument("--heads", type=int, default=1)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--patience", type=int, default=10)
    ap.add_argument("--valid-users", type=int, default=10000, help="validation sample (SASRec+'s validation_size)")
    ap.add_argument("--max-minutes", type=float, default=None)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    events, _, _ = load_split(args.warehouse, args.ratings)
    ids = np.unique(events["item_id"].to_numpy())
    events = events.with_columns(pl.Series("ix", np.searchsorted(ids, events["item_id"].to_numpy()) + 1))
    seqs = {u: g.sort("position") for u, g in events.partition_by("user_id", as_dict=True, maintain_order=True).items()}
    train, valid_h, valid_t, test_h, test_t = [], [], [], [], []
    for g in seqs.values():
        split, ix = g["split"].to_numpy(), g["ix"].to_numpy()
        tr = ix[split == "train"]
        if len(tr) >= 2:
            train.append(tr)
        if (split == "valid").any() and len(tr):
            valid_h.append(tr)
            valid_t.append(ix[split == "valid"][0])
        if (split == "test").any():
            test_h.append(ix[split != "test"])
            test_t.append(ix[split == "test"][0])
    valid_t, test_t = np.array(valid_t), np.array(test_t)
    if len(valid_h) > args.valid_users:
        pick = np.sort(rng.choice(len(valid_h), args.valid_users, replace=False))
        valid_h, valid_t = [valid_h[i] for i in pick], valid_t[pick]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load {load}; {len(ids)} items, {len(train)} train users, {len(valid_h)} valid users, "
          f"{len(test_h)} test users; {vars(args)}", flush=True)
    model = SASRec(len(ids), args.max_len, args.hidden, args.blocks, args.heads, args.dropout)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    best, best_epoch, best_state, started, curve = -1.0, 0, None, time.perf_counter(), []
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        total, positions = 0.0, 0
        order = rng.permutation(len(train))
        for lo in range(0, len(order), args.batch):
            windows = [train[i][-args.max_len - 1:] for i in order[lo:lo + args.batch]]
            block, _ = pad(windows, args.max_len + 1)
            inputs, targets = block[:, :-1], block[:, 1:]
            mask = targets > 0
            h = model(inputs)[mask]
            loss = full_ce(h, model.item.weight, targets[mask]) / mask.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * int(mask.sum())
            positions += int(mask.sum())
        train_s = time.perf_counter() - t0
        ndcg, hit = evaluate(model, valid_h, valid_t, max_len=args.max_len)
        curve.append(round(float(ndcg), 4))
        print(f"epoch {epoch} loss {total / positions:.4f} valid ndcg@10 {ndcg:.4f} hr@10 {hit:.4f} "
              f"train {train_s:.0f}s ({positions / train_s:,.0f} positions/s) total {time.perf_counter() - t0:.0f}s "
              f"load {os.getloadavg()[0]:.2f}", flush=True)
        if ndcg > best:
            best, best_epoch = ndcg, epoch
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        if epoch - best_epoch >= args.patience:
            print(f"early stop after epoch {epoch}", flush=True)
            break
        elapsed = time.perf_counter() - started
        if args.max_minutes and elapsed + (time.perf_counter() - t0) > args.max_minutes * 60:
            print(f"time box of {args.max_minutes} min reached after epoch {epoch} (still improving: "
                  f"{best_epoch == epoch})", flush=True)
            break
    seconds = time.perf_counter() - started
    model.load_state_dict(best_state)
    vn, vh = evaluate(model, valid_h, valid_t, max_len=args.max_len)
    tn, th = evaluate(model, test_h, test_t, max_len=args.max_len)
    print(f"RESULT sasrec+ best_epoch={best_epoch}/{len(curve)} valid ndcg@10={vn:.4f} hr@10={vh:.4f} "
          f"test ndcg@10={tn:.4f} hr@10={th:.4f} train+valid seconds={seconds:.0f} curve={curve} "
          f"load_before={load} load_after={' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)


if __name__ == "__main__":
    main()
