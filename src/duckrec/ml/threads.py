"""How many threads the torch loops use, and how their idle threads wait.

On a shared host a parallel region is only as fast as its slowest thread: with more
runnable threads than cores, one of ours waits for a time slice while the other waits at
the barrier, and a GRU (a parallel region per time step) ran 10-20x slower instead of the
2-3x a fair share of the cores would cost. Two things prevent it:

- idle threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``, set before torch
  starts OpenMP unless the environment says otherwise), so a waiting thread gives its
  core back; on an idle machine that costs nothing measurable;
- the count is the smallest of ``OMP_NUM_THREADS`` (when set), the CPUs this process may
  run on (``os.sched_getaffinity``) and the caller's limit (the build target's
  ``threads``). With ``lm.follow_load`` (opt-in) training also counts the cores idle right
  now (``/proc/stat``) and picks again every few seconds.

A different thread count changes the float sums of training (measured: 1 and 2 threads
give different weights on this CPU), so the count is fixed by default and a fixed seed
gives the same tables on a quiet or a busy host; ``follow_load`` trades that for speed on
a crowded one.
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Iterator

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


_M_MMAP_THRESHOLD = -3
_BLOCK_THRESHOLD = 1 << 20  # inside scoring blocks: 1 MB and more is mmapped
_TRAINING_THRESHOLD = 32 << 20  # elsewhere: glibc's own ceiling for its moving threshold (64-bit)


def _libc():
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:  # the user chose; leave glibc alone
        return None
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:  # not glibc
        return None


_LIBC = _libc()
_scoring_depth = 0  # nested scoring loops hold the threshold until the outermost ends


@contextmanager
def scoring_heap() -> Iterator[None]:
    """Score blocks inside come from mmap and go back to the kernel when freed.

    glibc raises its mmap threshold each time a large block is freed, up to 32 MB, so after
    the first few score blocks every later one (a few to tens of MB) comes from the heap,
    where the small arrays kept between blocks pin it: validation on a 54k-item catalogue
    grew to 9-10 GB RSS in one pass (about 280 MB with the threshold held at 1 MB). Holding
    it at 1 MB for the whole process instead cost training 35-55% of its throughput (every
    step's activations page-faulted in fresh), so it holds only inside scoring loops; on
    exit the threshold goes to glibc's own ceiling and the freed heap is trimmed. Off glibc
    this does nothing.
    """
    global _scoring_depth
    if _LIBC is None:
        yield
        return
    if _scoring_depth == 0:
        _LIBC.mallopt(_M_MMAP_THRESHOLD, _BLOCK_THRESHOLD)
    _scoring_depth += 1
    try:
        yield
    finally:
        _scoring_depth -= 1
        if _scoring_depth == 0:
            _LIBC.mallopt(_M_MMAP_THRESHOLD, _TRAINING_THRESHOLD)
            _LIBC.malloc_trim(0)


def allowed_cpus() -> int:
    """CPUs this process may run on, capped by ``OMP_NUM_THREADS`` when that is set."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        n = min(n, int(env))
    return max(n, 1)


def _cpu_times() -> tuple[int, int] | None:
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
    except OSError:
        return None
    values = [int(v) for v in fields[:8]]
    return values[3] + values[4], sum(values)  # (idle + iowait, all)


def idle_cores(window: float = 0.25) -> float | None:
    """Cores left idle by every process on the host over ``window`` seconds (None off Linux)."""
    first = _cpu_times()
    if first is None:
        return None
    time.sleep(window)
    second = _cpu_times()
    total = second[1] - first[1]
    if total <= 0:
        return None
    return (second[0] - first[0]) / total * (os.cpu_count() or 1)


class CoreMeter:
    """Cores that other processes used between two calls, without sleeping: the host's
    busy time from ``/proc/stat`` less this process's own CPU time."""

    def __init__(self) -> None:
        self._last = (_cpu_times(), time.process_time())

    def free_cores(self) -> float | None:
        now = (_cpu_times(), time.process_time())
        last, self._last = self._last, now
        if now[0] is None or last[0] is None:
            return None
        (idle0, total0), ours0 = last
        (idle1, total1), ours1 = now
        jiffies = total1 - total0
        if jiffies <= 0:
            return None
        cpus = os.cpu_count() or 1
        seconds = jiffies / cpus / os.sysconf("SC_CLK_TCK")
        busy = (jiffies - (idle1 - idle0)) / jiffies * cpus
        return cpus - max(0.0, busy - (ours1 - ours0) / seconds)


def pick_threads(limit: int | None = None, *, follow_load: bool = True, meter: CoreMeter | None = None) -> int:
    """Threads for the next loop: at most ``limit``, the allowed CPUs and (``follow_load``)
    the cores free right now (from ``meter`` since its last call, else measured over a
    quarter of a second), and at least 1."""
    n = allowed_cpus()
    if limit:
        n = min(n, int(limit))
    if follow_load and n > 1:
        free = meter.free_cores() if meter is not None else idle_cores()
        if free is not None:
            # a core counts when most of it is free
            n = min(n, int(free + 0.35))
    return max(n, 1)


@contextmanager
def torch_threads(n: int):
    """Runs a block on ``n`` torch threads and restores the count after."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(max(int(n), 1))
    try:
        yield
    finally:
        torch.set_num_threads(old)
