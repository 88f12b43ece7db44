"""What a build leaves behind: target/ (compiled SQL, manifest, run results) and _duckrec.* history."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from duckrec import __version__
from duckrec.core.nodes import Node, Project
from duckrec.warehouse.readers import insert_rows


@dataclass
class NodeResult:
    unique_id: str
    name: str
    kind: str
    relation: str
    status: str            # success | error | skipped | pass | fail | warn
    started_at: datetime
    finished_at: datetime
    seconds: float
    rows: int | None = None
    message: str = ""
    summary: str = ""      # the node's summary lines (its `summary` query, a Python model's dbt.summary())


def compiled_path(project: Project, node: Node) -> Path:
    rel = node.path if node.kind != "test" or node.test.get("type") == "singular" else \
        f"tests/{node.test.get('alias') or node.name}.sql"
    rel = rel[:-3] + ".sql" if rel.endswith(".py") else rel
    return project.path("target") / "compiled" / rel


def write_compiled(project: Project, node: Node, sql: str) -> Path:
    path = compiled_path(project, node)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(sql, encoding="utf-8")
    return path


class CompiledWriter:
    """Writes target/compiled/ on a background thread while DuckDB runs the next node
    (both release the GIL); creating hundreds of small files costs as much as running them."""

    def __init__(self, project: Project):
        self.project = project
        self._queue = None
        self._thread = None
        self._problems: list[str] = []

    def _drain(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                write_compiled(self.project, *item)
            except Exception as e:  # noqa: BLE001 - reported by close()
                self._problems.append(f"could not write compiled SQL: {e}")

    def write(self, node: Node, sql: str) -> Path:
        if self._thread is None:  # a plain thread and queue: concurrent.futures costs an import per build
            import threading
            from queue import SimpleQueue

            self._queue = SimpleQueue()
            self._thread = threading.Thread(target=self._drain, name="duckrec-compiled", daemon=True)
            self._thread.start()
        self._queue.put((node, sql))
        return compiled_path(self.project, node)

    def close(self) -> list[str]:
        """Wait for every write; the problems, if any, as messages."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        return self._problems


def _write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    # compact, as dbt writes them (an indented dump takes json's pure-Python encoder)
    tmp.write_text(json.dumps(payload, default=str), encoding="utf-8")
    os.replace(tmp, path)


def write_manifest(project: Project, target: str) -> None:
    from duckrec.artifacts.dbt import manifest

    _write_json(project.path("target") / "manifest.json", manifest(project, target, compiled_path))


def write_run_results(project: Project, run_id: str, command: str, elapsed: float, results: list[NodeResult],
                      args: dict[str, Any] | None = None) -> None:
    from duckrec.artifacts.dbt import run_results

    _write_json(project.path("target") / "run_results.json",
                run_results(project, run_id, command, elapsed, results, args))


HISTORY_DDL = """
create schema if not exists _duckrec;
create table if not exists _duckrec.runs (
    run_id varchar primary key, command varchar, target varchar, selector varchar, status varchar,
    started_at timestamp, finished_at timestamp, seconds double, n_nodes integer, n_success integer,
    n_errors integer, n_warnings integer, n_skipped integer, duckrec_version varchar, vars varchar,
    data_watermark timestamp);
create table if not exists _duckrec.node_runs (
    run_id varchar, unique_id varchar, name varchar, kind varchar, relation varchar, status varchar,
    started_at timestamp, finished_at timestamp, seconds double, rows bigint, error varchar, summary varchar);
comment on table _duckrec.runs is 'One row per duckrec command that ran nodes (build, run, seed, test): status, times, counts.';
comment on table _duckrec.node_runs is 'One row per node per run: status, started_at, finished_at, seconds, rows, error, summary (the lines the build summary printed for it).';
"""


def record_history(con, run: dict[str, Any], results: list[NodeResult], exists: bool = False) -> None:
    if not exists:
        con.execute(HISTORY_DDL)
    else:  # a warehouse from before `vars` and `data_watermark` (the newest event time) were recorded
        con.execute("alter table _duckrec.runs add column if not exists vars varchar; "
                    "alter table _duckrec.runs add column if not exists data_watermark timestamp; "
                    "alter table _duckrec.node_runs add column if not exists summary varchar")
    # the build's vars (project vars merged with --vars) tell apart builds of one warehouse;
    # columns named: later versions may add columns to existing warehouses
    con.execute("insert into _duckrec.runs (run_id, command, target, selector, status, started_at, finished_at, "
                "seconds, n_nodes, n_success, n_errors, n_warnings, n_skipped, duckrec_version, vars, data_watermark) "
                "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        run["run_id"], run["command"], run["target"], run["selector"], run["status"], run["started_at"],
        run["finished_at"], run["seconds"], len(results), run["n_success"], run["n_errors"], run["n_warnings"],
        run["n_skipped"], __version__, json.dumps(run.get("vars") or {}, sort_keys=True, default=str),
        run.get("data_watermark")])
    insert_rows(con, "_duckrec.node_runs (run_id, unique_id, name, kind, relation, status, started_at, finished_at, "
                "seconds, rows, error, summary)",
                ["varchar"] * 6 + ["timestamp", "timestamp", "double", "bigint", "varchar", "varchar"],
                [[run["run_id"], r.unique_id, r.name, r.kind, r.relation, r.status, r.started_at, r.finished_at,
                  r.seconds, r.rows, r.message or None, r.summary or None] for r in results])
