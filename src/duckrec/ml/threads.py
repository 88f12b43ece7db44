"""How many threads the torch loops use, and how their idle threads wait.

On a shared host a parallel region is only as fast as its slowest thread: with more
runnable threads than cores, one of ours waits for a time slice while the other waits at
the barrier, and a GRU (a parallel region per time step) ran 10-20x slower instead of the
2-3x a fair share of the cores would cost. Two things prevent it:

- idle threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``, set before torch
  starts OpenMP unless the environment says otherwise), so a waiting thread gives its
  core back; on an idle machine that costs nothing measurable;
- the count is the smallest of ``OMP_NUM_THREADS`` (when set), the CPUs this process may
  run on (``os.sched_getaffinity``), the caller's limit (the build target's ``threads``)
  and the cores idle right now (``/proc/stat`` over a quarter of a second): another
  process, or other work of the same build, takes its core out of the count. Training
  picks again at every epoch.

A different thread count must not change the tables a fixed seed gives: on the x86 CPUs
measured, the LM's training and scoring are bitwise identical on 1 and 2 threads (the
matmul kernels split rows, not sums; tests/test_scale_memory.py checks it).
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _fix_mmap_threshold(size: int = 1 << 20) -> None:
    """Blocks of ``size`` bytes and more come from mmap and go back to the kernel when freed.

    glibc raises its mmap threshold each time a large block is freed, up to 32 MB, so
    after the first few score blocks every later one (a few to tens of MB) comes from the
    heap, where the small arrays kept between blocks pin it: validation on a 54k-item
    catalogue grew by ~60 MB a block, to 15 GB RSS in one pass. A fixed threshold keeps
    it flat (about 500 MB). Off glibc this does nothing.
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-3, size)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


_fix_mmap_threshold()


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
