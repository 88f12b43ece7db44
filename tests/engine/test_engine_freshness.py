"""`duckrec source freshness` and the data watermark of each build."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from engine_fixtures import project, query, run, warehouse

BASE = {
    "project.yml": """
        name: fresh
        targets: {dev: {warehouse: warehouse.duckdb}}
        seeds:
          events:
            +loaded_at_field: "make_timestamp(ts * 1000000)"
            +freshness: {warn_after: {count: 2, period: day}, error_after: {count: 7, period: day}}
    """,
}


def _events(days_old: float) -> str:
    now = datetime.now(timezone.utc).timestamp()
    return f"id,ts\n1,{int(now - 30 * 86400)}\n2,{int(now - days_old * 86400)}\n"


def test_fresh_stale_and_late_sources(tmp_path, capsys):
    root = project(tmp_path, {"seeds/events.csv": _events(0.5)}, base=BASE)
    assert run(capsys, root, "build").code == 0
    r = run(capsys, root, "source", "freshness")
    assert r.code == 0 and "PASS  seed.events" in r.out, r
    (root / "seeds/events.csv").write_text(_events(3))
    assert run(capsys, root, "build").code == 0
    r = run(capsys, root, "source", "freshness")
    assert r.code == 0 and "WARN  seed.events" in r.out and "3.0 days old" in r.out, r
    (root / "seeds/events.csv").write_text(_events(8))
    assert run(capsys, root, "build").code == 0
    r = run(capsys, root, "source", "freshness")
    assert r.code == 1 and "ERROR seed.events" in r.out, r
    results = json.loads((root / "target/sources.json").read_text())["results"]
    assert results[0]["status"] == "error" and results[0]["unique_id"] == "seed.events"


def test_each_run_records_the_data_watermark(tmp_path, capsys):
    root = project(tmp_path, {"seeds/events.csv": "id,ts\n1,1000\n2,1500000000\n"}, base=BASE)
    assert run(capsys, root, "build").code == 0
    assert query(warehouse(root), "select data_watermark from _duckrec.runs") == [
        (datetime(2017, 7, 14, 2, 40),)]


def test_a_bad_threshold_names_the_file(tmp_path, capsys):
    root = project(tmp_path, {"seeds/events.csv": _events(1), "project.yml": BASE["project.yml"].replace(
        "period: day}, error_after", "period: fortnight}, error_after")}, base=BASE)
    assert run(capsys, root, "build").code == 0
    r = run(capsys, root, "source", "freshness")
    assert r.code == 2 and "project.yml" in r.err and "fortnight" in r.err, r
