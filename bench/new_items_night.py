"""A night that adds items: build the project with the seeds' newest N items held back from
movies.csv (and their events from ratings.csv), then add the N items back to movies.csv (no
event yet: they just arrived in the catalogue) and build again, as the nightly schedule would.

Prints what the second build did with the new items: how many texts it encoded (the log line
and _duckrec.node_runs.summary of ml.item_text_embeddings), what ml.lm_checkpoints did, and
which new items recs.served_recommendations serves, by strategy, with their reasons.

    python bench/new_items_night.py --items 20 --work /tmp/night
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]


def build(work: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", "import sys; from duckrec.cli import main; sys.exit(main())", "build"],
                         cwd=work, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"build failed in {work}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    return time.perf_counter() - t0, run.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=20)
    ap.add_argument("--work", default="/tmp/duckrec-night")
    args = ap.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(ROOT, work, ignore=shutil.ignore_patterns(".git", ".venv", "target", "*.duckdb*", "__pycache__"))
    con = duckdb.connect()
    # the newest items: the last N by first rating
    newest = [r[0] for r in con.sql(f"""
        select movieId from read_csv('{ROOT}/seeds/ratings.csv') group by movieId
        order by min(timestamp) desc, movieId desc limit {args.items}""").fetchall()]
    held = ", ".join(map(str, newest))
    movies, ratings = work / "seeds/movies.csv", work / "seeds/ratings.csv"
    full_movies = (ROOT / "seeds/movies.csv")
    con.sql(f"copy (select * from read_csv('{full_movies}', all_varchar=true) where movieId::bigint not in ({held})) "
            f"to '{movies}' (header)")
    con.sql(f"copy (select * from read_csv('{ROOT}/seeds/ratings.csv', all_varchar=true) "
            f"where movieId::bigint not in ({held})) to '{ratings}' (header)")
    first, _ = build(work)
    print(f"first build (without the {args.items} items): {first:.0f}s")
    shutil.copy(full_movies, movies)  # the night: the items arrive, no event yet
    second, out = build(work)
    print(f"second build (the {args.items} items added to movies.csv): {second:.0f}s")
    for line in out.splitlines():
        if "encoded" in line or "lm_checkpoints" in line and ("carried" in line or "kept" in line or "train" in line):
            print("  log:", line.strip()[:200])
    wh = duckdb.connect(str(work / "warehouse.duckdb"), read_only=True)
    print("  _duckrec:", wh.sql("""select name, summary from _duckrec.node_runs
        where name = 'item_text_embeddings' order by started_at desc limit 1""").fetchall())
    served = wh.sql(f"""select strategy, count(*) as rows, count(distinct item_id) as items, any_value(reason) as a_reason
        from recs.served_recommendations where item_id in ({held}) group by strategy order by strategy""").fetchall()
    print(f"  new items served, by strategy (rows, distinct items, a reason): {served}")


if __name__ == "__main__":
    main()
