"""Small defects of the command line: a closed pipe, the lock's exit code, the vars of a run."""
from __future__ import annotations

import json
import subprocess
import sys

from engine_fixtures import JAFFLE, TRACEBACK, query, run, warehouse, write_project

from duckrec.cli import EXIT_LOCKED
from duckrec.warehouse.locks import BuildLock


def test_ls_into_a_closed_pipe_ends_quietly(tmp_path):
    root = write_project(tmp_path, JAFFLE)
    # the reader goes away before duckrec writes a line: `duckrec ls | head -0`
    proc = subprocess.Popen([sys.executable, "-m", "duckrec.cli", "ls", "--project-dir", str(root)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0
    assert "BrokenPipeError" not in err and TRACEBACK not in err, err


def test_a_lock_conflict_has_its_own_exit_code(tmp_path, capsys):
    root = write_project(tmp_path, JAFFLE)
    with BuildLock(warehouse(root)):
        result = run(capsys, root, "build")
    assert EXIT_LOCKED == 3 and result.code == EXIT_LOCKED
    assert "another duckrec build is running" in result.err and TRACEBACK not in result.text
    assert not warehouse(root).exists()
    assert run(capsys, root, "build").code == 0  # a failed node is still 1, a project error 2


def test_runs_record_the_vars_and_selection_of_each_build(tmp_path, capsys):
    root = write_project(tmp_path, JAFFLE)
    assert run(capsys, root, "build").code == 0
    assert run(capsys, root, "build", "-s", "stg_orders+", "--exclude", "orders_log",
               "--vars", "{min_amount: 6, extra: {a: 1}}").code == 0
    rows = query(warehouse(root), "select selector, vars from _duckrec.runs order by started_at")
    assert [r[0] for r in rows] == [None, "stg_orders+ --exclude orders_log"]
    assert json.loads(rows[0][1]) == {"min_amount": 0}
    assert json.loads(rows[1][1]) == {"min_amount": 6, "extra": {"a": 1}}


def test_a_warehouse_built_before_vars_were_recorded_gains_the_column(tmp_path, capsys):
    root = write_project(tmp_path, JAFFLE)
    assert run(capsys, root, "build", "-s", "raw_orders").code == 0
    import duckdb

    con = duckdb.connect(str(warehouse(root)))
    con.execute("alter table _duckrec.runs drop column vars")
    con.close()
    assert run(capsys, root, "build", "-s", "raw_orders").code == 0
    assert query(warehouse(root), "select vars from _duckrec.runs order by started_at") == [
        (None,), ('{"min_amount": 0}',)]
