"""How duckrec's cost grows with its work: full default builds of generated event logs.

    python bench/bench_scale.py [--sizes 100k 2M 10M] [--workdir DIR] [--memory-limit 4GB]
                                [--threads N] [--max-rss-gb 20] [--no-content] [--vars YAML]

Each size is one ``duckrec build`` of this project, run as its own process under
``/usr/bin/time -v``: ``100k`` is the default seeds (MovieLens latest-small); the others
are logs made by ``bench/make_events.py`` (their users and items below) in a copy of the
project whose seeds point at the generated files. For each build it prints wall time,
peak RSS (whole process, as the kernel counts it), seconds and peak RSS per stage (seeds,
staging, features, ml, recs, eval, tests), the slowest nodes, and ``eval.metrics`` at K=10
(every strategy, the baselines beside ``lm``), then the ratio of every build's wall time
to the first one's. Sizes are built one at a time, in the order given.

``--max-rss-gb`` stops a build whose RSS passes it (the machine has 24 GiB; an
out-of-memory kill takes the whole host with it), and the table says so. Run it with
``nice -n 10`` on a shared machine, and check ``uptime`` first: every figure is the load's too.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SIZES = {  # name: (events, users, items)
    "100k": None,  # the default seeds
    "400k": (400_000, 40_000, 54_000),  # the shape of the review log that once ran out of memory
    "1M": (1_000_000, 30_000, 20_000),
    "2M": (2_000_000, 40_000, 20_000),
    "10M": (10_000_000, 150_000, 50_000),
}
STAGES = ("seeds", "staging", "features", "ml", "recs", "eval", "tests")


def parse_size(text: str) -> tuple[str, tuple[int, int, int] | None]:
    """'2M' (a preset) or 'EVENTS:USERS:ITEMS'."""
    if text in SIZES:
        return text, SIZES[text]
    parts = text.split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise SystemExit(f"--sizes: expected one of {sorted(SIZES)} or EVENTS:USERS:ITEMS, found {text!r}")
    return text, tuple(int(p) for p in parts)


def make_project(dest: Path, data: Path | None, memory_limit: str | None, threads: int | None,
                 resume: bool = False) -> Path:
    """A copy of this project (sql, python models, YAML linked) whose seeds read ``data``;
    its warehouse is removed unless ``resume`` (then the build reuses every unchanged node)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("sql", "python_models", "models", "tests", "seeds"):
        link = dest / name
        if not link.exists():
            link.symlink_to(ROOT / name)
    config = yaml.safe_load((ROOT / "project.yml").read_text())
    if config.get("vars_schema") and not (dest / config["vars_schema"]).exists():
        (dest / config["vars_schema"]).symlink_to(ROOT / config["vars_schema"])
    if data is not None:
        for seed in ("ratings", "movies", "tags", "links"):
            config["seeds"][seed]["+file"] = str(data / f"{seed}.csv")
    for target in config["targets"].values():
        if memory_limit:
            target.setdefault("settings", {})["memory_limit"] = memory_limit
        if threads:
            target["threads"] = threads
    (dest / "project.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    if not resume:
        for stale in dest.glob("warehouse.duckdb*"):
            stale.unlink()
        shutil.rmtree(dest / "target", ignore_errors=True)
    return dest


def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and its descendants (from /proc)."""
    total, todo, seen = 0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            for child in Path(f"/proc/{p}/task").iterdir():
                kids = (child / "children").read_text().split()
                todo += [int(k) for k in kids]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def run_build(project: Path, vars_yaml: str | None, max_rss: float, publish_partial: bool = False) -> dict:
    """One build under /usr/bin/time -v, its node events and an RSS trace."""
    cmd = ["/usr/bin/time", "-v", str(Path(sys.executable).parent / "duckrec"), "build",
           "--project-dir", str(project), "--log-format", "json"]
    if vars_yaml:
        cmd += ["--vars", vars_yaml]
    if publish_partial:
        cmd.append("--publish-partial")
    log_path = project / "build.log"
    samples: list[tuple[float, int]] = []
    killed = []
    t0 = time.time()
    with open(log_path, "w") as out, open(project / "time.txt", "w") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=project)

        def watch() -> None:
            while proc.poll() is None:
                rss = _tree_rss(proc.pid)
                samples.append((time.time(), rss))
                if rss > max_rss and not killed:
                    killed.append(rss)
                    subprocess.run(["pkill", "-TERM", "-P", str(proc.pid)], check=False)
                time.sleep(0.5)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        rc = proc.wait()
        watcher.join()
    wall = time.time() - t0
    timing = (project / "time.txt").read_text()
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", timing)
    events = []
    for line in log_path.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return {"rc": rc, "wall": wall, "peak_rss": int(peak.group(1)) * 1024 if peak else None,
            "events": events, "samples": samples, "killed_at": killed[0] if killed else None}


def stage_of(unique_id: str, paths: dict[str, str]) -> str:
    if unique_id.startswith("seed."):
        return "seeds"
    if unique_id.startswith("test."):
        return "tests"
    parts = Path(paths.get(unique_id, "")).parts
    return parts[1] if len(parts) > 2 and parts[1] in STAGES else "other"


def node_paths(project: Path) -> dict[str, str]:
    out = subprocess.run([str(Path(sys.executable).parent / "duckrec"), "ls", "--project-dir", str(project),
                          "--output", "json"], capture_output=True, text=True, check=False).stdout
    return {row["unique_id"]: row["path"] for row in map(json.loads, out.splitlines()) if row}


def per_stage(result: dict, paths: dict[str, str]) -> dict[str, dict]:
    """Seconds and the peak RSS sampled while a stage's nodes ran."""
    stages: dict[str, dict] = {}
    nodes = []
    for e in result["events"]:
        if e.get("event") != "node":
            continue
        end = datetime.fromisoformat(e["ts"]).timestamp()
        stage = stage_of(e["node"], paths)
        s = stages.setdefault(stage, {"seconds": 0.0, "peak_rss": 0, "nodes": 0})
        s["seconds"] += e["seconds"]
        s["nodes"] += 1
        start = end - e["seconds"]
        rss = [r for t, r in result["samples"] if start - 0.25 <= t <= end + 0.25]
        s["peak_rss"] = max([s["peak_rss"], *rss])
        nodes.append((e["seconds"], e["node"], e["status"], max(rss, default=0)))
    result["nodes"] = sorted(nodes, reverse=True)
    return stages


def metrics_at_10(project: Path) -> list[tuple]:
    import duckdb

    path = project / "warehouse.duckdb"
    if not path.exists():
        return []
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("select strategy, n_users, ndcg, hit_rate, coverage, novelty from eval.metrics "
                           "where k = 10 order by ndcg desc").fetchall()
    except duckdb.Error:
        return []
    finally:
        con.close()


def gib(n: float | None) -> str:
    return "-" if n is None else f"{n / 2**30:.2f} GiB"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["100k", "2M", "10M"])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/duckrec-scale"))
    ap.add_argument("--memory-limit", default=None, help="DuckDB memory_limit of the target (e.g. 4GB)")
    ap.add_argument("--threads", type=int, default=None, help="the target's threads")
    ap.add_argument("--max-rss-gb", type=float, default=20.0)
    ap.add_argument("--no-content", action="store_true", help="generated logs without genres or tags")
    ap.add_argument("--vars", default=None, help="--vars for every build")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--resume", action="store_true",
                    help="keep each project's warehouse: after a --publish-partial build failed, the next build "
                         "reuses every node that succeeded and did not change, and runs the rest")
    ap.add_argument("--publish-partial", action="store_true",
                    help="publish the nodes that succeeded when others fail (a later build of the same "
                         "project reruns only what failed and what depends on it)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args()
    sizes = [parse_size(s) for s in args.sizes]
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cpus "
          f"(affinity {len(os.sched_getaffinity(0))}); {datetime.now():%Y-%m-%d %H:%M}", flush=True)
    report = []
    for name, shape in sizes:
        tag = name + ("-plain" if args.no_content and shape else "")
        data = None
        gen_seconds = 0.0
        if shape:
            data = args.workdir / f"data-{tag}"
            if not (data / "ratings.csv").exists():
                t = time.time()
                cmd = [sys.executable, str(ROOT / "bench" / "make_events.py"), "--events", str(shape[0]),
                       "--users", str(shape[1]), "--items", str(shape[2]), "--seed", str(args.seed),
                       "--out", str(data)] + (["--no-content"] if args.no_content else [])
                subprocess.run(cmd, check=True)
                gen_seconds = time.time() - t
        project = make_project(args.workdir / f"project-{tag}", data, args.memory_limit, args.threads, args.resume)
        print(f"\n== {tag}: " + ("default seeds" if not shape else
              f"{shape[0]:,} events, {shape[1]:,} users, {shape[2]:,} items (generated in {gen_seconds:.0f}s)"),
              flush=True)
        result = run_build(project, args.vars, args.max_rss_gb * 2**30, args.publish_partial)
        stages = per_stage(result, node_paths(project))
        status = "ok" if result["rc"] == 0 else (
            f"STOPPED at {gib(result['killed_at'])} RSS" if result["killed_at"] else f"FAILED (exit {result['rc']})")
        print(f"build {status}: wall {result['wall']:.0f}s, peak RSS {gib(result['peak_rss'])}")
        print(f"  {'stage':<10}{'nodes':>6}{'seconds':>10}{'peak RSS':>12}")
        for stage in STAGES + ("other",):
            if stage in stages:
                s = stages[stage]
                print(f"  {stage:<10}{s['nodes']:>6}{s['seconds']:>10.1f}{gib(s['peak_rss']):>12}")
        print("  slowest nodes: " + ", ".join(f"{n.split('.')[-1]} {sec:.0f}s/{gib(r)}"
                                               for sec, n, _, r in result["nodes"][:6]))
        print("  largest nodes: " + ", ".join(f"{n.split('.')[-1]} {gib(r)}/{sec:.0f}s"
                                              for sec, n, _, r in sorted(result["nodes"], key=lambda x: -x[3])[:6]))
        failed = [e for e in result["events"] if e.get("event") == "error"]
        for e in failed[:3]:
            print(f"  error in {e.get('node')}: {str(e.get('message'))[:300]}")
        metrics = metrics_at_10(project)
        if metrics:
            print(f"  eval.metrics at K=10: {'strategy':<14}{'users':>7}{'ndcg':>8}{'hit':>8}{'cover':>8}{'novelty':>9}")
            for strategy, users, ndcg, hit, cov, nov in metrics:
                print(f"  {'':<22}{strategy:<14}{users:>7}{ndcg:>8.4f}{hit:>8.4f}{cov:>8.4f}{nov:>9.2f}")
        report.append({"size": tag, "shape": shape, "rc": result["rc"], "wall": result["wall"],
                       "peak_rss": result["peak_rss"], "stages": stages, "metrics": metrics,
                       "slowest": result["nodes"][:10], "stopped_at_rss": result["killed_at"]})
        sys.stdout.flush()
    if len(report) > 1:
        base = report[0]
        print(f"\nwall time relative to {base['size']}: " + ", ".join(
            f"{r['size']} {r['wall'] / base['wall']:.1f}x" for r in report[1:]))
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
    return 0 if all(r["rc"] == 0 for r in report) else 1


if __name__ == "__main__":
    sys.exit(main())
