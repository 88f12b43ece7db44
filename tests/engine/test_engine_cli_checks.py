"""What the CLI says before and while it works: --wait names whom it waits for (and the build
time leaves the wait out), `debug` checks every seed's file, optional seeds build without
their file, and --fail-on-empty-selection makes a selector that matches nothing an error."""
from __future__ import annotations

import io
from datetime import datetime, timedelta
import json
import os
import threading
import time

import pytest

from duckrec.warehouse import locks
from duckrec.parser.project import load_project
from duckrec.execute.runner import Options, Runner
from duckrec.execute.reporter import Reporter
from engine_fixtures import TRACEBACK, project, query, run, warehouse

BASE = {
    "project.yml": """
        name: seed_shop
        targets: {dev: {warehouse: warehouse.duckdb}}
        seeds:
          prices:
            +column_types: {item_id: BIGINT, price: DOUBLE}
    """,
    "seeds/prices.csv": "item_id,price\n1,1.5\n2,2.0\n",
    "sql/priced.sql": "{{ config(materialized='table') }}\nselect * from {{ ref('prices') }}",
}

WITH_LINKS = {
    **BASE,
    "project.yml": """
        name: seed_shop
        targets: {dev: {warehouse: warehouse.duckdb}}
        seeds:
          prices:
            +column_types: {item_id: BIGINT, price: DOUBLE}
          links:
            +file: data/links.csv
            +optional: true
            +column_types: {item_id: BIGINT, imdb_id: VARCHAR}
    """,
    "sql/linked.sql": """
        {{ config(materialized='table') }}
        select p.item_id, l.imdb_id from {{ ref('prices') }} p left join {{ ref('links') }} l using (item_id)
    """,
}


# ----------------------------------------------------------------- --wait


def test_wait_says_whom_it_waits_for_and_its_time_leaves_the_wait_out(tmp_path, monkeypatch):
    root = project(tmp_path, {}, base=BASE)
    monkeypatch.setattr(locks, "WAIT_REPORT_EVERY", 0.3)
    out = io.StringIO()
    held = locks.BuildLock(locks.real_path(warehouse(root))).__enter__()  # another build, as this process
    hold_after_seen = 0.8
    released: list[datetime] = []

    def release_once_reported() -> None:
        deadline = time.monotonic() + 30
        while "still waiting" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(hold_after_seen)
        released.append(datetime.now())
        held.__exit__(None, None, None)

    releaser = threading.Thread(target=release_once_reported)
    releaser.start()
    code = Runner(load_project(root), Options(wait=True, quiet=True, log_format="json"),
                  Reporter(quiet=True, log_format="json", out=out)).run()
    releaser.join()
    assert code == 0, out.getvalue()
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    waits = [e for e in events if e["event"] == "wait"]
    # the first line names the holder (pid and start time from the lock file), then periodic lines
    assert waits[0]["message"].startswith("waiting for another duckrec build (pid ")
    assert f"pid {os.getpid()} since " in waits[0]["holder"], waits[0]
    assert any(w["message"].startswith("still waiting for another duckrec build (pid ") for w in waits), waits
    assert "the warehouse is free after" in waits[-1]["message"]
    summary = next(e for e in events if e["event"] == "summary")
    assert summary["waited_seconds"] >= hold_after_seen
    # the build's own time starts once it has the warehouse: its recorded start is the release,
    # less the moments spent planning before the wait (a start that counted the wait would lie
    # a whole wait, over a second here, before the release)
    started_at = query(warehouse(root), "select started_at from _duckrec.runs")[0][0]
    assert started_at >= released[0] - timedelta(seconds=0.5), (started_at, released)
    assert "after " in summary["message"] and "waiting for the warehouse" in summary["message"]


def test_without_wait_a_held_lock_still_fails_at_once_naming_the_holder(tmp_path, capsys):
    root = project(tmp_path, {}, base=BASE)
    held = locks.BuildLock(locks.real_path(warehouse(root))).__enter__()
    try:
        result = run(capsys, root, "build")
    finally:
        held.__exit__(None, None, None)
    assert result.code == 3
    assert f"pid {os.getpid()} since " in result.err


# ----------------------------------------------------------------- seeds: debug, required, optional


def test_debug_names_each_seed_and_its_file(tmp_path, capsys):
    root = project(tmp_path, {"project.yml": """
        name: seed_shop
        targets: {dev: {warehouse: warehouse.duckdb}}
        seeds:
          prices:
            +column_types: {item_id: BIGINT, price: DOUBLE}
          links:
            +file: data/links.csv
    """}, base=BASE)
    result = run(capsys, root, "debug")
    assert result.code == 1, result
    lines = result.out.splitlines()
    assert any(line.split()[:3] == ["seed", "prices", "seeds/prices.csv"] and line.endswith(" ok") for line in lines)
    failed = next(line for line in lines if line.split()[:2] == ["seed", "links"])
    assert "FAILED" in failed and "'data/links.csv'" in failed and "found none" in failed
    assert "Some checks failed." in result.out


def test_debug_says_an_absent_optional_seed_builds_empty(tmp_path, capsys):
    root = project(tmp_path, {}, base=WITH_LINKS)
    result = run(capsys, root, "debug")
    assert result.code == 0, result
    links = next(line for line in result.out.splitlines() if line.split()[:2] == ["seed", "links"])
    assert "absent: optional, builds as an empty table" in links


def test_a_missing_required_seed_stops_the_build_before_anything_runs(tmp_path, capsys):
    root = project(tmp_path, {"seeds/prices.csv": None, "project.yml": """
        name: seed_shop
        targets: {dev: {warehouse: warehouse.duckdb}}
        seeds:
          prices:
            +file: data/prices.csv
    """}, base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 2, result
    assert "seed prices: expected its file at 'data/prices.csv'" in result.err
    assert "+optional: true" in result.err
    assert " OK " not in result.out and not warehouse(root).exists()  # no node ran, nothing was created
    assert TRACEBACK not in result.text


def test_an_absent_optional_seed_builds_as_an_empty_table_with_a_warning(tmp_path, capsys):
    root = project(tmp_path, {}, base=WITH_LINKS)
    result = run(capsys, root, "build")
    assert result.code == 0, result
    assert 'WARN  seed "raw"."links"' in result.out, result.out
    assert "data/links.csv is absent; the seed is optional" in result.out
    wh = warehouse(root)
    assert query(wh, "select count(*) from raw.links") == [(0,)]
    assert query(wh, "select column_name, data_type from information_schema.columns where table_name = 'links' "
                     "order by ordinal_position") == [("item_id", "BIGINT"), ("imdb_id", "VARCHAR")]
    # the models that read it see no rows: the build went on
    assert query(wh, "select item_id, imdb_id from linked order by item_id") == [(1, None), (2, None)]
    # once the file arrives it loads
    (root / "data").mkdir()
    (root / "data/links.csv").write_text("item_id,imdb_id\n1,tt01\n")
    again = run(capsys, root, "build")
    assert again.code == 0, again
    assert query(wh, "select item_id, imdb_id from linked order by item_id") == [(1, "tt01"), (2, None)]


def test_an_absent_optional_seed_without_declared_columns_says_what_to_declare(tmp_path, capsys):
    root = project(tmp_path, {"project.yml": WITH_LINKS["project.yml"].replace(
        "+column_types: {item_id: BIGINT, imdb_id: VARCHAR}", "+delimiter: ','")}, base=WITH_LINKS)
    result = run(capsys, root, "build")
    assert result.code == 1, result
    assert "seed links is optional and its file 'data/links.csv' is absent" in result.out
    assert "seeds.links.+column_types" in result.out


# ----------------------------------------------------------------- --fail-on-empty-selection


@pytest.mark.parametrize("command", ["build", "run", "seed", "test"])
def test_fail_on_empty_selection_makes_a_selector_matching_nothing_an_error(tmp_path, capsys, command):
    root = project(tmp_path, {}, base=BASE)
    lenient = run(capsys, root, command, "-s", "pricez")
    assert lenient.code == 0, lenient   # dbt's rule: a warning, exit 0
    assert "matches nothing" in lenient.out
    strict = run(capsys, root, command, "-s", "pricez", "--fail-on-empty-selection")
    assert strict.code == 2, strict
    assert "pricez" in strict.err and "--fail-on-empty-selection makes that an error; nothing ran" in strict.err
    assert not warehouse(root).exists()


def test_fail_on_empty_selection_when_the_command_runs_none_of_what_is_selected(tmp_path, capsys):
    root = project(tmp_path, {}, base=BASE)
    # `prices` exists, but it is a seed and `run` runs models only
    result = run(capsys, root, "run", "-s", "prices", "--fail-on-empty-selection")
    assert result.code == 2, result
    assert "the selection (prices) leaves no model for `duckrec run` to run" in result.err
    assert run(capsys, root, "build", "-s", "prices", "--fail-on-empty-selection").code == 0


def test_declaring_a_present_seed_optional_rebuilds_nothing(tmp_path, capsys):
    root = project(tmp_path, {}, base=BASE)
    assert run(capsys, root, "build").code == 0
    (root / "project.yml").write_text((root / "project.yml").read_text().replace(
        "+column_types: {item_id: BIGINT, price: DOUBLE}", "+column_types: {item_id: BIGINT, price: DOUBLE}\n    +optional: true"))
    again = run(capsys, root, "build")
    assert again.code == 0, again
    assert "REUSE seed \"raw\".\"prices\"" in again.out and "REUSE table \"main\".\"priced\"" in again.out, again.out
