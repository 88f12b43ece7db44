"""Replay a growing event log: an initial build, nightly builds, then a --full-refresh reference.

The default ratings seed is split by time into an initial load (--initial-share of the
events) and --nights nightly files. In a throwaway copy of the project (ratings read from
`events/*.csv`) it runs, as cron would, plain `duckrec build`s:

  initial      the first build on the initial file
  nothing new  a build with no new file
  night i      one new file per night; on night --kill-night a first build is killed with
               SIGKILL midway (the published warehouse must stay as it was) and the next
               build catches up; the file of night --malformed-night carries malformed rows
  reference    a --full-refresh build of every file, in a separate copy

and prints per build: wall time, nodes rebuilt/reused, lm NDCG@10; then the comparison
with the reference, eval.exploration_outcomes, an off-policy (IPS) estimate of lm from
lm_explore's served logs of every build against lm's directly measured precision, and the
issue's bars. Timings are noisy on a shared machine: the load
average is printed next to each build; compare ratios from one run.

    .venv/bin/python bench/bench_nightly.py [--nights 5] [--vars '{lm: {epochs: 4}}']
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import yaml

REPO = Path(__file__).resolve().parents[1]
EQUAL_TABLES = ["staging.events", "features.user_rfm", "features.event_splits"]
SQL_STRATEGIES = ("popularity", "item_knn", "markov")


def make_copy(dest: Path) -> None:
    dest.mkdir(parents=True)
    for rel in ("sql", "python_models", "models", "tests/data_tests"):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(REPO / rel, dest / rel, ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "seeds").mkdir()
    for name in ("movies.csv", "tags.csv", "links.csv"):
        shutil.copy(REPO / "seeds" / name, dest / "seeds" / name)
    config = yaml.safe_load((REPO / "project.yml").read_text())
    if config.get("vars_schema"):
        shutil.copy(REPO / config["vars_schema"], dest / config["vars_schema"])
    config["seeds"]["ratings"]["+file"] = "events/*.csv"
    for target in config["targets"].values():
        target["warehouse"] = "warehouse.duckdb"
    (dest / "project.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    (dest / "events").mkdir()


def split_ratings(out: Path, nights: int, initial_share: float) -> list[Path]:
    """Write the initial file into out/ and return the nightly files (kept aside)."""
    con = duckdb.connect()
    con.execute(f"create table r as select * from read_csv('{REPO / 'seeds/ratings.csv'}', header = true, "
                "all_varchar = true)")
    con.execute("create table o as select *, row_number() over (order by timestamp::bigint, userId::bigint, "
                "movieId::bigint) as n from r")
    total = con.execute("select count(*) from o").fetchone()[0]
    cut = int(total * initial_share)
    con.execute(f"copy (select * exclude (n) from o where n <= {cut} order by n) to '{out / 'events/initial.csv'}'")
    aside = out.parent / "nightly_files"
    aside.mkdir(exist_ok=True)
    files = []
    step = (total - cut) / nights
    for i in range(nights):
        lo, hi = cut + round(i * step), cut + round((i + 1) * step)
        path = aside / f"night_{i + 1:02d}.csv"
        con.execute(f"copy (select * exclude (n) from o where n > {lo} and n <= {hi} order by n) to '{path}'")
        files.append(path)
    return files


def duckrec(project: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "duckrec.cli", *args, "--project-dir", str(project)]


def run_build(project: Path, label: str, extra: tuple[str, ...] = (), vars_: str | None = None) -> dict:
    load = os.getloadavg()[0]
    args = ["build", "--quiet", *extra] + (["--vars", vars_] if vars_ else [])
    t0 = time.perf_counter()
    proc = subprocess.run(duckrec(project, *args), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    row = {"label": label, "wall": wall, "load": load, "code": proc.returncode, "out": proc.stdout + proc.stderr}
    row.update(stats(project))
    return row


def stats(project: Path) -> dict:
    con = duckdb.connect(str(project / "warehouse.duckdb"), read_only=True)
    try:
        run_id, watermark = con.execute("select run_id, data_watermark from _duckrec.runs "
                                        "order by started_at desc limit 1").fetchone()
        counts = dict(con.execute("select status, count(*) from _duckrec.node_runs where run_id = ? "
                                  "and kind != 'test' group by status", [run_id]).fetchall())
        ndcg = con.execute("select ndcg from eval.metrics where strategy = 'lm' and k = 10").fetchone()
        mode = con.execute("select trained_on ->> 'mode' from ml.lm_checkpoints "
                           "order by trained_at desc limit 1").fetchone()
        return {"run_id": run_id, "watermark": watermark, "rebuilt": counts.get("success", 0),
                "reused": counts.get("reused", 0), "failed": counts.get("error", 0) + counts.get("skipped", 0),
                "lm_ndcg10": ndcg[0] if ndcg else None, "lm_mode": mode[0] if mode else None}
    finally:
        con.close()


def killed_build(project: Path, after: float) -> dict:
    """Start a build, SIGKILL it after `after` seconds; the published warehouse must be untouched."""
    before = stats(project)
    size_before = (project / "warehouse.duckdb").stat().st_size
    proc = subprocess.Popen(duckrec(project, "build", "--quiet"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(after)
    alive = proc.poll() is None
    if alive:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    after_stats = stats(project)
    return {"killed_while_running": alive, "same_last_run": after_stats["run_id"] == before["run_id"],
            "same_size": (project / "warehouse.duckdb").stat().st_size == size_before}


def compare(nightly: Path, reference: Path) -> list[tuple[str, int, int, int]]:
    con = duckdb.connect()
    con.execute(f"attach '{nightly / 'warehouse.duckdb'}' as a (read_only)")
    con.execute(f"attach '{reference / 'warehouse.duckdb'}' as b (read_only)")
    out = []
    for table in EQUAL_TABLES:
        out.append(_diff(con, table, f"select * from a.{table}", f"select * from b.{table}"))
    strategies = ", ".join(f"'{s}'" for s in SQL_STRATEGIES)
    out.append(_diff(con, "eval.metrics (SQL baselines)",
                     f"select * from a.eval.metrics where strategy in ({strategies})",
                     f"select * from b.eval.metrics where strategy in ({strategies})"))
    return out


def _diff(con, name: str, left: str, right: str) -> tuple[str, int, int, int]:
    n = con.execute(f"select count(*) from ({left})").fetchone()[0]
    only_left = con.execute(f"select count(*) from ({left} except all {right})").fetchone()[0]
    only_right = con.execute(f"select count(*) from ({right} except all {left})").fetchone()[0]
    return name, n, only_left, only_right


def served_slots(project: Path, k: int = 10) -> tuple:
    """The build's data watermark and lm's and lm_explore's served slots (with lm_explore's
    propensities): the logs a production system keeps of what it showed each night."""
    con = duckdb.connect(str(project / "warehouse.duckdb"), read_only=True)
    try:
        mark = con.execute("select max(event_time) from staging.events").fetchone()[0]
        rows = con.execute("select strategy, user_id, item_id, propensity from recs.recommendations "
                           "where strategy in ('lm', 'lm_explore') and rank <= ?", [k]).fetchall()
    finally:
        con.close()
    return mark, rows


def replay_off_policy(logs: list[tuple], reference: Path) -> list[str]:
    """IPS of lm (and of lm_explore itself) from lm_explore's served logs over the replay, by
    the project's off_policy_estimate macro, beside lm's directly measured precision on the
    same slots. One unit per (build, user): the lists a build served, rewarded by the user's
    events after the build's watermark (to the end of the replay); builds with no later
    events and repeated watermarks (a build with nothing new) are left out."""
    import polars as pl

    frames, seen = [], set()
    for b, (mark, rows) in enumerate(logs):
        if mark in seen or not rows:
            continue
        seen.add(mark)
        schema = {"strategy": pl.Utf8, "user_id": pl.Int64, "item_id": pl.Int64, "propensity": pl.Float64}
        frames.append(pl.DataFrame(rows, schema=schema, orient="row")
                      .with_columns(pl.lit(b).alias("build"), pl.lit(mark).alias("watermark")))
    con = duckdb.connect()
    con.execute(f"attach '{reference / 'warehouse.duckdb'}' as ref (read_only)")
    con.register("slots_frame", pl.concat(frames))
    unit = "build::bigint * 1000000000 + user_id"  # (build, user) as one user id
    con.execute(f"""
        create table later_events as
        select distinct {unit} as user_id, e.item_id
        from ref.staging.events e join (select distinct build, watermark from slots_frame) m
            on e.event_time > m.watermark""")
    con.execute(f"create table slots as select {unit} as unit, * from slots_frame "
                f"where build in (select distinct user_id // 1000000000 from later_events)")
    con.execute("create table logged_slots as select unit as user_id, item_id, propensity from slots "
                "where strategy = 'lm_explore'")
    con.execute("create table target_slots as select strategy, unit as user_id, item_id from slots")
    sql = subprocess.run(duckrec(reference, "compile", "--inline",
                                 "{{ off_policy_estimate('logged_slots', 'target_slots', 'later_events', "
                                 "['strategy']) }}"), capture_output=True, text=True, check=True).stdout
    estimates = {r[0]: r[1:] for r in con.execute(
        f"select strategy, n_users, ips, snips, ips_low, ips_high from ({sql})").fetchall()}
    direct = {r[0]: r[1:] for r in con.execute(
        "select strategy, avg((e.user_id is not null)::integer), count(e.user_id) from target_slots t "
        "left join later_events e using (user_id, item_id) group by all").fetchall()}
    builds = con.execute("select count(distinct build) from slots").fetchone()[0]
    con.close()
    out = [f"{builds} builds' served lists, rewarded by each user's later events in the replay"]
    for strategy in ("lm", "lm_explore"):
        n, ips, snips, low, high = estimates[strategy]
        d, hits = direct[strategy]
        out.append(f"{strategy:<10} IPS {ips:.4f} [{low:.4f}, {high:.4f}]  SNIPS {snips:.4f}  direct {d:.4f} "
                   f"({hits} slots engaged with later, {n} build x user units)  direct within the interval: "
                   f"{low <= d <= high}")
    return out


def list_drift(project: Path, k: int = 10) -> str:
    """How many served lm lists of users with no new event change when the newest (warm)
    checkpoint replaces its parent: whether recomputing only changed users would be correct."""
    import numpy as np

    from duckrec.ml import TrainedLM, top_k, user_sequences

    con = duckdb.connect(str(project / "warehouse.duckdb"), read_only=True)
    try:
        ckpts = con.execute("select checkpoint_id, parent_checkpoint_id, state, trained_on ->> 'data_watermark' "
                            "from ml.lm_checkpoints order by trained_at desc limit 2").fetchall()
        if len(ckpts) < 2 or ckpts[0][1] != ckpts[1][0]:
            return "no warm-started checkpoint with its parent kept"
        events = con.sql("select user_id, item_id, position, event_time from features.event_splits").pl()
        mark = con.execute("select ?::timestamp", [ckpts[1][3]]).fetchone()[0]
    finally:
        con.close()
    new, old = TrainedLM.from_bytes(ckpts[0][2]), TrainedLM.from_bytes(ckpts[1][2])
    users, seqs = user_sequences(events["user_id"].to_numpy(), new.catalogue.index(events["item_id"].to_numpy()),
                                 events["position"].to_numpy())
    changed_users = set(events.filter(events["event_time"] > mark)["user_id"].to_list())
    keep = np.array([u not in changed_users for u in users.tolist()])
    a, _ = top_k(new, seqs, k, bigram_sequences=seqs)
    b, _ = top_k(old, seqs, k, bigram_sequences=seqs)
    same = (a == b).all(1)[keep]
    return (f"{int(keep.sum())} users without new events: {int((~same).sum())} ({100 * (~same).mean():.0f}%) "
            f"have a different lm top-{k} under the warm-started model")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nights", type=int, default=5)
    p.add_argument("--initial-share", type=float, default=0.9)
    p.add_argument("--kill-night", type=int, default=2, help="0 = no kill test")
    p.add_argument("--kill-after", type=float, default=None,
                   help="seconds into the build (default: half the initial build's wall time, capped)")
    p.add_argument("--malformed-night", type=int, default=1, help="0 = none")
    p.add_argument("--vars", default=None, help="--vars for every build, e.g. '{lm: {epochs: 4}}'")
    p.add_argument("--workdir", default=None, help="keep the copies here (default: a temp folder, removed)")
    args = p.parse_args()

    base = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="duckrec_nightly_"))
    nightly, reference = base / "nightly", base / "reference"
    for d in (nightly, reference):
        if d.exists():
            shutil.rmtree(d)
    make_copy(nightly)
    files = split_ratings(nightly, args.nights, args.initial_share)
    extra_vars = args.vars
    rows = []

    def show(row: dict) -> None:
        rows.append(row)
        ndcg = "-" if row["lm_ndcg10"] is None else f"{row['lm_ndcg10']:.4f}"
        print(f"{row['label']:<14} {row['wall']:8.1f}s  load {row['load']:5.1f}  rebuilt {row['rebuilt']:3d}  "
              f"reused {row['reused']:3d}  failed {row['failed']:2d}  lm {row['lm_mode'] or '-':<4}  "
              f"lm ndcg@10 {ndcg}  exit {row['code']}", flush=True)
        if row["code"] not in (0,):
            print(row["out"][-3000:])

    print(f"workdir {base}; {args.nights} nightly files; cores {os.cpu_count()}", flush=True)
    print(f"{'build':<14} {'wall':>9}", flush=True)
    initial = run_build(nightly, "initial", vars_=extra_vars)
    show(initial)
    logs = [served_slots(nightly)]
    show(run_build(nightly, "nothing new", vars_=extra_vars))
    kill_report = None
    malformed_report = None
    last_wall = None
    for i, f in enumerate(files, 1):
        dest = nightly / "events" / f.name
        shutil.copy(f, dest)
        if i == args.malformed_night:
            last_time = dest.read_text().rstrip().rsplit("\n", 1)[-1].rsplit(",", 1)[-1]
            with open(dest, "a") as fh:  # a user id that is no number, a row one field short
                fh.write(f"not-a-user,1,4.0,{last_time}\n612,1,4.0\n")
        if i == args.kill_night:
            # half a nightly build (the last one timed), so the kill lands while it runs
            after = args.kill_after or min(0.5 * (last_wall or initial["wall"]), 60.0)
            kill_report = killed_build(nightly, after)
            print(f"night {i}: build killed with SIGKILL after {after:.0f}s: {kill_report}", flush=True)
        row = run_build(nightly, f"night {i}", vars_=extra_vars)
        show(row)
        logs.append(served_slots(nightly))
        last_wall = row["wall"]
        if i == args.malformed_night:
            lines = [ln.strip() for ln in row["out"].splitlines() if "malformed" in ln]
            con = duckdb.connect(str(nightly / "warehouse.duckdb"), read_only=True)
            malformed_report = con.execute("select malformed from _duckrec.seed_files where path like ?",
                                           [f"%{f.name}"]).fetchone()
            rejected = con.execute("select count(*) from staging.rejected_events where user_id is null").fetchone()
            con.close()
            print(f"night {i}: malformed rows counted in _duckrec.seed_files: {malformed_report[0]}; "
                  f"rejected events with no user: {rejected[0]}; build said: {lines[:1]}", flush=True)

    shutil.copytree(nightly, reference, ignore=shutil.ignore_patterns("warehouse.duckdb*", "target"))
    ref = run_build(reference, "reference", ("--full-refresh",), vars_=extra_vars)
    show(ref)

    print("\ncomparison with the reference (rows, only in nightly, only in reference):")
    equal = True
    for name, n, left, right in compare(nightly, reference):
        equal &= left == 0 and right == 0
        print(f"  {name:<32} {n:7d} rows  {left:5d} {right:5d}  {'equal' if not left and not right else 'DIFFERENT'}")
    con = duckdb.connect(str(nightly / "warehouse.duckdb"), read_only=True)
    n_hist, n_builds, per_build = con.execute(
        "select count(*), count(distinct run_id), (select count(*) from eval.metrics) from eval.metrics_history"
    ).fetchone()
    print("\neval.exploration_outcomes (share of opened / not opened genres engaged with afterwards):")
    for row in con.execute("select data_watermark, strategy, n_later_events, n_probed, probed_engaged_share, "
                           "n_not_probed, not_probed_engaged_share from eval.exploration_outcomes "
                           "order by data_watermark, strategy").fetchall():
        print("  {} {:<10} later events {:6d}  opened {:5d} {}  not opened {:6d} {}".format(
            row[0], row[1], row[2], row[3], "-" if row[4] is None else f"{row[4]:.3f}",
            row[5], "-" if row[6] is None else f"{row[6]:.3f}"))
    con.close()
    print("\noff-policy: lm estimated from lm_explore's served logs over the replay (precision at 10):")
    for line in replay_off_policy(logs, reference):
        print("  " + line)
    nights = [r for r in rows if r["label"].startswith("night")]
    nothing = rows[1]
    worst_night = max(r["wall"] for r in nights) / initial["wall"]
    warm = nights[-1]["lm_ndcg10"]
    ratio = warm / ref["lm_ndcg10"] if warm and ref["lm_ndcg10"] else float("nan")
    print(f"\nbars (ratios to the initial build of {initial['wall']:.1f}s):")
    print(f"  nightly builds: worst {worst_night:.2f}x, mean "
          f"{sum(r['wall'] for r in nights) / len(nights) / initial['wall']:.2f}x  (bar <= 0.35x)")
    print(f"  nothing new:    {nothing['wall'] / initial['wall']:.3f}x  ({nothing['wall']:.1f}s; bar <= 0.10x)")
    print(f"  tables equal to the reference: {equal}")
    print(f"  lm ndcg@10 warm {warm:.4f} vs reference {ref['lm_ndcg10']:.4f}: {ratio:.3f}x  (bar >= 0.97x)")
    print(f"  eval.metrics_history: {n_hist} rows = {n_builds} builds x {per_build} (strategy x K)")
    if kill_report:
        print(f"  kill -9: {kill_report}")
    print(f"  lists: {list_drift(nightly)}")
    if not args.workdir:
        shutil.rmtree(base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
