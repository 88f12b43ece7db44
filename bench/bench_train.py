"""Training throughput of the item LM: positions per second, and the floating-point rate
achieved against a plain matmul peak measured in the same run.

    python bench/bench_train.py [--items 8000] [--positions 100000] [--steps 12]
                                [--matmul-dtype auto|float32|bfloat16] [--threads N] [--compete N]

The step timed is the whole training step of ``train_lm`` (content-aware item vectors,
GRU forward, chunked full-softmax loss with its gradients, backward through the GRU,
gradient clipping, Adam). Useful FLOPs per position are counted as forward + 2x for the
backward (the GRU, the projection to item space, and the three [positions x catalogue x
dim] matmuls of the softmax); the ratio is against the best square float32 matmul rate on
the same threads, and, where the softmax matmuls run in bfloat16, also against the
bfloat16 matmul peak. Check ``uptime`` first: a loaded machine measures the load.

Threads: by default as training picks them (``duckrec.ml.threads.pick_threads``: the
allowed CPUs, fixed); ``--follow-load`` as training does with ``lm.follow_load`` (less the
cores busy right now); ``--threads N`` fixes them.
``--compete N`` measures twice in one run: idle, then with N CPU-bound processes
(``while True: pass``) that the bench starts beside itself and stops after, and prints
both throughputs and their ratio.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

# duckrec.ml first: it sets the OpenMP wait policy, which torch reads once when it loads
from duckrec.ml import TrainConfig, make_batches, training_windows
from duckrec.ml.model import ItemLM, LMConfig, fast_matmul_dtype, full_softmax_loss
from duckrec.ml.threads import pick_threads

import numpy as np
import torch


def matmul_peak(size: int = 2048, reps: int = 6, dtype: torch.dtype = torch.float32) -> float:
    """Best FLOP/s of a square ``dtype`` matmul on the current threads."""
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    a @ b
    best = 0.0
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = max(best, 2 * size**3 / (time.perf_counter() - t0))
    return best


def flops_per_position(cfg: LMConfig) -> float:
    """Useful forward + backward (2x forward) FLOPs of one predicted position."""
    d, h, n = cfg.embedding_dim, cfg.hidden_dim, cfg.n_items
    gates = 3 if cfg.cell == "gru" else 4
    rnn = 2 * gates * (d * h + h * h) * cfg.layers
    return 3 * (rnn + 2 * h * d + 2 * n * d)


def measure(model, opt, batches, steps: int, dtype: torch.dtype) -> tuple[float, int, float]:
    """(seconds, positions, seconds in the softmax loss) of ``steps`` timed training steps."""
    timed, positions, loss_s = 0.0, 0, 0.0
    for i, batch in enumerate(batches[: steps + 1]):
        t0 = time.perf_counter()
        vectors = model.item_vectors()
        states, _ = model(batch.inputs, vectors)
        mask = batch.targets > 0
        t1 = time.perf_counter()
        loss = full_softmax_loss(model, states[mask], batch.targets[mask], vectors, dtype=dtype)
        t2 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        if i:  # the first batch warms up the allocator and kernels
            timed += time.perf_counter() - t0
            loss_s += t2 - t1
            positions += int(mask.sum())
    return timed, positions, loss_s


def start_competitors(n: int) -> list[subprocess.Popen]:
    """``n`` single-thread CPU-bound processes, as other jobs on a shared host."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def stop(processes: list[subprocess.Popen]) -> None:
    for p in processes:
        p.kill()
        p.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=8000)
    ap.add_argument("--users", type=int, default=670)
    ap.add_argument("--positions", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=12, help="batches timed (after one warm-up batch)")
    ap.add_argument("--matmul-dtype", default=None, help="default: the TrainConfig default")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None, help="default: picked as training picks them")
    ap.add_argument("--compete", type=int, default=0, help="also measure beside N CPU-bound processes")
    ap.add_argument("--follow-load", action="store_true", help="pick threads from the idle cores (lm.follow_load)")
    args = ap.parse_args()
    train = TrainConfig()
    threads = args.threads or pick_threads(follow_load=args.follow_load)
    batch_size = args.batch_size or train.batch_size
    dtype = fast_matmul_dtype(args.matmul_dtype or train.matmul_dtype)
    torch.set_num_threads(threads)
    peak = matmul_peak()
    peak_bf16 = matmul_peak(dtype=torch.bfloat16) if dtype == torch.bfloat16 else None
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
    batches = make_batches(training_windows(seqs, train.window), batch_size, rng)
    timed, positions, loss_s = measure(model, opt, batches, args.steps, dtype)
    rate = positions / timed
    achieved = rate * flops_per_position(cfg)
    softmax_flops = 6 * cfg.n_items * cfg.embedding_dim * positions
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cpus")
    print(f"config: items {args.items}, dim {cfg.embedding_dim}, hidden {cfg.hidden_dim}, "
          f"batch {batch_size} x window {train.window}, threads {threads}, softmax matmuls {str(dtype)[6:]}")
    print(f"throughput: {rate:,.0f} positions/s ({positions} positions in {timed:.2f}s; "
          f"softmax loss+grads {loss_s / timed:.0%} of the step at {softmax_flops / loss_s / 1e9:.1f} GFLOP/s)")
    line = (f"matmul peak float32: {peak / 1e9:.1f} GFLOP/s; achieved: {achieved / 1e9:.1f} GFLOP/s; "
            f"ratio {achieved / peak:.0%} of the float32 peak")
    if peak_bf16:
        line += f", {achieved / peak_bf16:.0%} of the bfloat16 peak ({peak_bf16 / 1e9:.1f} GFLOP/s)"
    print(line)
    if args.compete:
        others = start_competitors(args.compete)
        try:
            time.sleep(1.0)
            busy_threads = args.threads or pick_threads(follow_load=args.follow_load)
            torch.set_num_threads(busy_threads)
            b_timed, b_positions, _ = measure(model, opt, batches[args.steps + 1 :], args.steps, dtype)
        finally:
            stop(others)
        busy = b_positions / b_timed
        print(f"with {args.compete} competing CPU-bound processes: {busy:,.0f} positions/s on {busy_threads} "
              f"threads ({b_positions} positions in {b_timed:.2f}s); idle {rate:,.0f} on {threads}; "
              f"ratio {busy / rate:.2f}")


if __name__ == "__main__":
    main()
