"""Training throughput of the item LM: positions per second, and the floating-point rate
achieved against a plain matmul peak measured in the same run.

    python bench/bench_train.py [--items 8000] [--positions 100000] [--steps 8]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from duckrec.ml import TrainConfig, make_batches, training_windows
from duckrec.ml.model import ItemLM, LMConfig, full_softmax_loss


def matmul_peak(threads: int, size: int = 2048, reps: int = 5) -> float:
    """Best FLOP/s of a square float32 matmul on ``threads`` threads."""
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = 0.0
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = max(best, 2 * size**3 / (time.perf_counter() - t0))
    return best


def flops_per_position(cfg: LMConfig) -> float:
    """Forward + backward (x3) FLOPs of one predicted position."""
    d, h, n = cfg.embedding_dim, cfg.hidden_dim, cfg.n_items
    gates = 3 if cfg.cell == "gru" else 4
    rnn = 2 * gates * (d * h + h * h) * cfg.layers
    return 3 * (rnn + 2 * h * d + 2 * n * d)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--items", type=int, default=8000)
    ap.add_argument("--users", type=int, default=670)
    ap.add_argument("--positions", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=8, help="batches timed")
    args = ap.parse_args()
    train = TrainConfig()
    peak = matmul_peak(train.threads)
    rng = np.random.default_rng(0)
    # Zipf-ish items in sequences of MovieLens-like lengths
    lengths = np.maximum(3, rng.geometric(args.users / args.positions, args.users))
    popularity = 1.0 / np.arange(1, args.items + 1)
    seqs = [rng.choice(args.items, size=n, p=popularity / popularity.sum()) + 1 for n in lengths]
    cfg = LMConfig(args.items, 0, train.embedding_dim, train.hidden_dim, train.cell, train.layers, train.dropout)
    torch.manual_seed(0)
    model = ItemLM(cfg, torch.zeros(args.items + 1, dtype=torch.long), torch.zeros(0, dtype=torch.long),
                   torch.ones(args.items + 1))
    opt = torch.optim.Adam(model.parameters(), lr=train.lr)
    batches = make_batches(training_windows(seqs, train.window), train.batch_size, rng)
    timed, positions = 0.0, 0
    for i, batch in enumerate(batches[: args.steps + 1]):
        t0 = time.perf_counter()
        vectors = model.item_vectors()
        states, _ = model(batch.inputs, vectors)
        mask = batch.targets > 0
        loss = full_softmax_loss(model, states[mask], batch.targets[mask], vectors)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i:  # the first batch warms up the allocator and kernels
            timed += time.perf_counter() - t0
            positions += int(mask.sum())
    rate = positions / timed
    achieved = rate * flops_per_position(cfg)
    print(f"config: items {args.items}, dim {cfg.embedding_dim}, hidden {cfg.hidden_dim}, "
          f"batch {train.batch_size} x window {train.window}, threads {train.threads}")
    print(f"throughput: {rate:,.0f} positions/s ({positions} positions in {timed:.2f}s)")
    print(f"matmul peak: {peak / 1e9:.1f} GFLOP/s; achieved: {achieved / 1e9:.1f} GFLOP/s; "
          f"ratio {achieved / peak:.0%}")


if __name__ == "__main__":
    main()
