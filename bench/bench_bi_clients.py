"""BI clients querying through publishes: do they see each new build at once, never a mix?

    python bench/bench_bi_clients.py [--builds 3] [--clients 10] [--pause 0.01] [--keep DIR]

A tiny project whose every relation carries a build id (`--vars '{build_id: N}'`) is built,
then `duckrec serve` starts (loopback, a free port), and 2 x --clients threads query it
continuously: half through SQLAlchemy's `duckrec://` URL on one pooled engine (every other
one holds its connection, the rest check one out per query), half over the wire protocol
with psycopg (one connection each, every other one inside a transaction block). Meanwhile
--builds builds publish, one after the other (real `duckrec build` processes), each once
every client has queried twice since the last one. Each query
reads the build id from two relations at once (`main.build_info` and the view
`recs.served_recommendations`), so it shows which build it read and whether it mixed two.

Printed: failed queries (must be 0); per client and build, the number of the first query
started after that build's process exited (so after its rename) that read the new build
(1 = the first query did; must be <= 1); queries that mixed two builds (must be 0). The
loops stop on their own (two queries per client after the last build, or at --deadline s). Exit 1 when a bar
is missed.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PY = sys.executable
SRC = Path(__file__).resolve().parents[1] / "src"
MIXED = ("select (select max(build_id) from main.build_info) as info, "
         "(select max(build_id) from recs.served_recommendations) as served")

FILES = {
    "project.yml": """
        name: bibench
        targets: {dev: {warehouse: warehouse.duckdb}}
        vars: {build_id: 1}
        models:
          +materialized: table
          recs: {+schema: recs}
    """,
    "seeds/items.csv": "item_id,title\n10,The Matrix\n11,Heat\n12,Up\n",
    "sql/build_info.sql": "select {{ var('build_id') }}::integer as build_id",
    "sql/recs/recommendations.sql": """
        select u.user_id, r.rank, (10 + (u.user_id + r.rank) % 3)::bigint as item_id,
               {{ var('build_id') }}::integer as build_id
        from range(1, 2001) u(user_id), range(1, 11) r(rank)
    """,
    "sql/recs/served_recommendations.sql": """
        {{ config(materialized='view') }}
        select r.*, i.title from {{ ref('recommendations') }} r join {{ ref('items') }} i using (item_id)
    """,
}


@dataclass
class Client:
    name: str
    queries: list[tuple[float, float, int, int]] = field(default_factory=list)  # start, end, info, served
    failures: list[str] = field(default_factory=list)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def write_project(root: Path) -> None:
    for rel, text in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))


def build(root: Path, build_id: int) -> None:
    done = subprocess.run([PY, "-m", "duckrec.cli", "build", "--quiet", "--vars", f"{{build_id: {build_id}}}",
                           "--project-dir", str(root)], capture_output=True, text=True, env=_env(), timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"build {build_id} failed:\n{done.stdout}\n{done.stderr}")


def start_server(root: Path) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([PY, "-m", "duckrec.cli", "serve", "--port", "0", "--project-dir", str(root)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    for line in proc.stdout:
        if line.startswith("listening on "):
            return proc, int(line.split()[2].rstrip(";").rsplit(":", 1)[1])
    raise SystemExit(f"duckrec serve did not start: {proc.stderr.read()}")


def run_client(client: Client, query, stop: threading.Event, pause: float) -> None:
    while not stop.is_set():
        started = time.monotonic()
        try:
            info, served = query()
            client.queries.append((started, time.monotonic(), info, served))
        except Exception as e:  # noqa: BLE001 - counted and shown: the bar is zero
            client.failures.append(f"{type(e).__name__}: {str(e).splitlines()[0][:160]}")
        time.sleep(pause)


def sqlalchemy_clients(root: Path, n: int) -> tuple[list, object]:
    import sqlalchemy as sa

    sys.path.insert(0, str(SRC))
    from duckrec.bi.dialect import register

    register()
    engine = sa.create_engine(f"duckrec:///{root / 'warehouse.duckdb'}", pool_size=n, max_overflow=0)
    text = sa.text(MIXED)
    made = []
    for i in range(n):
        if i % 2 == 0:
            held = engine.connect()

            def query(conn=held):
                return tuple(conn.execute(text).one())
            made.append((Client(f"sqlalchemy-held-{i}"), query, held))
        else:
            def query():
                with engine.connect() as conn:
                    return tuple(conn.execute(text).one())
            made.append((Client(f"sqlalchemy-checkout-{i}"), query, None))
    return made, engine


def psycopg_clients(port: int, n: int) -> list:
    import psycopg

    made = []
    for i in range(n):
        in_transaction = i % 2 == 1  # psycopg's default: a BEGIN before the first query, kept open
        conn = psycopg.connect(f"host=127.0.0.1 port={port} user=duckrec dbname=warehouse",
                               autocommit=not in_transaction)

        def query(conn=conn):
            return tuple(conn.execute(MIXED).fetchone())
        made.append((Client(f"psycopg-{'transaction' if in_transaction else 'autocommit'}-{i}"), query, conn))
    return made


def wait_for_queries(clients: list[Client], since: float, n: int, deadline: float) -> None:
    while time.monotonic() < deadline and any(sum(1 for q in c.queries if q[0] >= since) < n for c in clients):
        time.sleep(0.05)


def queries_to_see(client: Client, published_at: float, build_id: int) -> int | None:
    """1-based number of the first query started after `published_at` that read `build_id`."""
    after = [q for q in client.queries if q[0] >= published_at]
    for number, (_, _, info, served) in enumerate(after, 1):
        if info >= build_id and served >= build_id:
            return number
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--builds", type=int, default=3, help="builds that publish while clients query (default 3)")
    ap.add_argument("--clients", type=int, default=10, help="clients of each kind (default 10)")
    ap.add_argument("--pause", type=float, default=0.01, help="seconds between one client's queries (default 0.01)")
    ap.add_argument("--settle", type=float, default=1.0, help="seconds of queries before and after each build")
    ap.add_argument("--deadline", type=float, default=300, help="stop the clients after this many seconds at most")
    ap.add_argument("--keep", help="build the project in this folder and keep it")
    args = ap.parse_args()

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_bi_"))
    write_project(root)
    build(root, 1)
    server, port = start_server(root)
    stop = threading.Event()
    engine = None
    try:
        sa_made, engine = sqlalchemy_clients(root, args.clients)
        made = sa_made + psycopg_clients(port, args.clients)
        threads = [threading.Thread(target=run_client, args=(c, q, stop, args.pause), daemon=True) for c, q, _ in made]
        started = time.monotonic()
        for t in threads:
            t.start()
        published: list[tuple[int, float, float]] = []  # build id, build started, build process exited
        clients = [c for c, _, _ in made]
        for build_id in range(2, args.builds + 2):
            time.sleep(args.settle)
            began = time.monotonic()
            build(root, build_id)
            published.append((build_id, began, time.monotonic()))
            # every client gets two queries in after the publish before anything else happens
            wait_for_queries(clients, published[-1][2], 2, started + args.deadline)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        server.terminate()
        server.wait(timeout=30)
    for _, _, handle in made:
        if handle is not None:
            handle.close()
    if engine is not None:
        engine.dispose()
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return report(clients, published, elapsed)


def report(clients: list[Client], published: list[tuple[int, float, float]], elapsed: float) -> int:
    total = sum(len(c.queries) for c in clients)
    failed = sum(len(c.failures) for c in clients)
    mixed = sum(1 for c in clients for q in c.queries if q[2] != q[3])
    print(f"{len(clients)} clients, {total} queries in {elapsed:.1f} s ({total / elapsed:.0f}/s), "
          f"{len(published)} builds published (build times: "
          + ", ".join(f"{end - began:.1f} s" for _, began, end in published) + ")")
    worst = 0
    print(f"{'client':<26}" + "".join(f" build {b:>2}" for b, _, _ in published) + "   queries  failed  mixed")
    for c in clients:
        seen = [queries_to_see(c, end, b) for b, _, end in published]
        worst = max([worst] + [s if s is not None else 10**9 for s in seen])
        own_mixed = sum(1 for q in c.queries if q[2] != q[3])
        print(f"{c.name:<26}" + "".join(f" {('never' if s is None else s):>8}" for s in seen)
              + f" {len(c.queries):>9} {len(c.failures):>7} {own_mixed:>6}")
    for c in clients:
        for failure in c.failures[:3]:
            print(f"  {c.name}: {failure}")
        for b, _, end in published:
            if queries_to_see(c, end, b) is None:
                after = [q[2:] for q in c.queries if q[0] >= end]
                print(f"  {c.name}: build {b} not seen; the {len(after)} queries started after it read {after[:5]}")
    print(f"failed queries: {failed} (bar 0); queries mixing two builds: {mixed} (bar 0); "
          f"most queries after a publish to see it: {'never' if worst >= 10**9 else worst} (bar 1)")
    return 0 if failed == 0 and mixed == 0 and worst <= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
