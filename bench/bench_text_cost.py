"""What text costs a build: the default project built from scratch with `text` on (the default)
and off, alternately, each into a fresh warehouse, in one run. Prints wall seconds, the slowest
nodes and the peak memory (max RSS of the build process) of each, and the on/off ratio.

    python bench/bench_text_cost.py --rounds 2
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODE = ("import resource, sys; from duckrec.cli import main; rc = main(); "
        "print('max_rss_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)")


def build(text_on: bool, folder: Path) -> tuple[float, str, int]:
    env = {**os.environ, "DUCKREC_WAREHOUSE": str(folder / ("on.duckdb" if text_on else "off.duckdb"))}
    args = [sys.executable, "-c", CODE, "build", "--full-refresh"]
    if not text_on:
        args += ["--vars", "{text: {enabled: false}}"]
    t0 = time.perf_counter()
    run = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if run.returncode != 0:
        sys.exit(f"build (text {'on' if text_on else 'off'}) failed:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    slowest = next((line for line in run.stdout.splitlines() if line.startswith("Slowest:")), "")
    rss = int(re.search(r"max_rss_kib (\d+)", run.stdout).group(1))
    return seconds, slowest, rss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    print(f"load before: {os.getloadavg()}")
    times: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for text_on in (False, True):
                folder = Path(tmp, f"round{r}-{'on' if text_on else 'off'}")
                folder.mkdir()
                seconds, slowest, rss = build(text_on, folder)
                times[text_on].append(seconds)
                print(f"round {r + 1} text {'on ' if text_on else 'off'}: {seconds:.0f}s, peak {rss / 1024:.0f} MiB; {slowest}")
    on, off = min(times[True]), min(times[False])
    print(f"best of {args.rounds}: on {on:.0f}s, off {off:.0f}s, ratio {on / off:.2f}; load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
