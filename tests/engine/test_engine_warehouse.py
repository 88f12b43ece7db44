"""Warehouse safety: readers never block a build or see it half done, SIGKILL loses nothing,
one build at a time (--wait queues)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from engine_fixtures import TRACEBACK, project, query, run, run_process, warehouse

# `slow` sleeps when DUCKREC_TEST_SLEEP is set, after touching DUCKREC_TEST_MARKER, so a test
# knows the build is mid-run (seeds and `numbers` done, `slow` and `after_slow` not yet).
BASE = {
    "project.yml": """
        name: wh_shop
        targets: {dev: {warehouse: warehouse.duckdb}}
        models:
          +materialized: table
    """,
    "seeds/numbers_seed.csv": "n\n1\n2\n3\n",
    "sql/numbers.sql": "select n from {{ ref('numbers_seed') }}",
    "python_models/slow.py": """
        import os
        import pathlib
        import time


        def model(dbt, session):
            marker = os.environ.get("DUCKREC_TEST_MARKER")
            if marker:
                pathlib.Path(marker).write_text("sleeping")
            time.sleep(float(os.environ.get("DUCKREC_TEST_SLEEP", "0")))
            return dbt.ref("numbers")
    """,
    "sql/after_slow.sql": "select count(*) as n from {{ ref('slow') }}",
}


def _start_slow_build(root: Path, marker: Path, seconds: float, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "DUCKREC_TEST_SLEEP": str(seconds), "DUCKREC_TEST_MARKER": str(marker)}
    proc = subprocess.Popen([sys.executable, "-m", "duckrec.cli", "build", "--full-refresh", *extra,
                             "--project-dir", str(root)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 30
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError(f"the slow model never started:\n{out}\n{err}")
        time.sleep(0.02)
    return proc


def _set_numbers(root: Path, values: list[int]) -> None:
    (root / "seeds/numbers_seed.csv").write_text("n\n" + "".join(f"{v}\n" for v in values))


def test_reader_neither_blocks_the_build_nor_sees_it_until_reconnecting(tmp_path, capsys):
    root = project(tmp_path, {}, base=BASE)
    assert run(capsys, root, "build").code == 0
    wh = warehouse(root)
    _set_numbers(root, [10, 20])
    reader = duckdb.connect(str(wh), read_only=True)  # a BI tool, left open
    try:
        assert reader.execute("select sum(n) from main.numbers").fetchall() == [(6,)]
        result = run_process(root, "build")  # a separate process, like a scheduled build
        assert result.code == 0, result
        # the open connection still reads the last published state, complete and consistent
        assert reader.execute("select sum(n) from main.numbers").fetchall() == [(6,)]
        assert reader.execute("select n from main.after_slow").fetchall() == [(3,)]
    finally:
        reader.close()
    assert query(wh, "select sum(n) from main.numbers") == [(30,)]
    assert query(wh, "select n from main.after_slow") == [(2,)]


def test_sigkill_mid_build_leaves_the_published_warehouse_intact(tmp_path, capsys):
    root = project(tmp_path, {}, base=BASE)
    assert run(capsys, root, "build").code == 0
    wh = warehouse(root)
    before = wh.read_bytes()
    _set_numbers(root, [7, 8, 9, 10])
    proc = _start_slow_build(root, tmp_path / "marker", 60)
    # `numbers` was rebuilt with the new seed in the build's copy before `slow` started, yet
    # readers (here `duckrec show`) still see the published state while the build runs
    shown = run(capsys, root, "show", "--inline", "select sum(n) as s from main.numbers", "--format", "csv")
    assert shown.code == 0 and shown.out.split() == ["s", "6"], shown
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert wh.read_bytes() == before
    assert query(wh, "select sum(n) from main.numbers") == [(6,)]
    assert query(wh, "select n from main.after_slow") == [(3,)]
    # no stale lock, no leftover state: the next build works and publishes the new data
    result = run(capsys, root, "build")
    assert result.code == 0, result
    assert query(wh, "select sum(n) from main.numbers") == [(34,)]
    assert query(wh, "select n from main.after_slow") == [(4,)]
    assert not (root / "warehouse.duckdb.building").exists()


def test_second_build_fails_at_once_with_a_lock_message(tmp_path, capsys):
    root = project(tmp_path, {}, base=BASE)
    proc = _start_slow_build(root, tmp_path / "marker", 30)
    try:
        started = time.monotonic()
        second = run(capsys, root, "build")
        assert time.monotonic() - started < 5
        assert second.code != 0
        assert "another duckrec build is running" in second.err and f"pid {proc.pid}" in second.err
        assert "--wait" in second.err
        assert TRACEBACK not in second.text
    finally:
        proc.kill()
        proc.communicate()


def test_wait_queues_behind_the_running_build(tmp_path, capsys):
    root = project(tmp_path, {}, base=BASE)
    proc = _start_slow_build(root, tmp_path / "marker", 1.5)
    second = run(capsys, root, "build", "--wait")
    assert second.code == 0, second
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, out + err
    runs = query(warehouse(root), "select status from _duckrec.runs order by started_at")
    assert runs == [("success",), ("success",)]  # both builds ran, one after the other


def test_sigterm_discards_the_build(tmp_path, capsys):
    root = project(tmp_path, {}, base=BASE)
    assert run(capsys, root, "build").code == 0
    wh = warehouse(root)
    _set_numbers(root, [100])
    proc = _start_slow_build(root, tmp_path / "marker", 60)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "nothing was published" in out + err and TRACEBACK not in out + err
    assert query(wh, "select sum(n) from main.numbers") == [(6,)]
    assert not (root / "warehouse.duckdb.building").exists()
