"""What a build leaves behind: target/ (compiled SQL, manifest, run results) and _duckrec.* history."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from . import __version__
from .project import Node, Project


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
        from concurrent.futures import ThreadPoolExecutor

        self.project = project
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="duckrec-compiled")
        self._pending: list = []

    def write(self, node: Node, sql: str) -> Path:
        self._pending.append(self._pool.submit(write_compiled, self.project, node, sql))
        return compiled_path(self.project, node)

    def close(self) -> list[str]:
        """Wait for every write; the problems, if any, as messages."""
        self._pool.shutdown(wait=True)
        return [f"could not write compiled SQL: {f.exception()}" for f in self._pending if f.exception()]


def _write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)


def write_manifest(project: Project, target: str) -> None:
    from .dbt_artifacts import manifest

    _write_json(project.path("target") / "manifest.json", manifest(project, target, compiled_path))


def write_run_results(project: Project, run_id: str, command: str, elapsed: float, results: list[NodeResult],
                      args: dict[str, Any] | None = None) -> None:
    from .dbt_artifacts import run_results

    _write_json(project.path("target") / "run_results.json",
                run_results(project, run_id, command, elapsed, results, args))


HISTORY_DDL = """
create schema if not exists _duckrec;
create table if not exists _duckrec.runs (
    run_id varchar primary key, command varchar, target varchar, selector varchar, status varchar,
    started_at timestamp, finished_at timestamp, seconds double, n_nodes integer, n_success integer,
    n_errors integer, n_warnings integer, n_skipped integer, duckrec_version varchar, vars varchar);
create table if not exists _duckrec.node_runs (
    run_id varchar, unique_id varchar, name varchar, kind varchar, relation varchar, status varchar,
    started_at timestamp, finished_at timestamp, seconds double, rows bigint, error varchar);
comment on table _duckrec.runs is 'One row per duckrec command that ran nodes (build, run, seed, test): status, times, counts.';
comment on table _duckrec.node_runs is 'One row per node per run: status, started_at, finished_at, seconds, rows, error.';
"""


def record_history(con, run: dict[str, Any], results: list[NodeResult], exists: bool = False) -> None:
    if not exists:
        con.execute(HISTORY_DDL)
    else:  # a warehouse from before `vars` was recorded
        con.execute("alter table _duckrec.runs add column if not exists vars varchar")
    # the build's vars (project vars merged with --vars) tell apart builds of one warehouse;
    # columns named: later versions add columns (data_watermark) to existing warehouses
    con.execute("insert into _duckrec.runs (run_id, command, target, selector, status, started_at, finished_at, "
                "seconds, n_nodes, n_success, n_errors, n_warnings, n_skipped, duckrec_version, vars) "
                "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        run["run_id"], run["command"], run["target"], run["selector"], run["status"], run["started_at"],
        run["finished_at"], run["seconds"], len(results), run["n_success"], run["n_errors"], run["n_warnings"],
        run["n_skipped"], __version__, json.dumps(run.get("vars") or {}, sort_keys=True, default=str)])
    # One multi-row insert per chunk: executemany costs milliseconds per row.
    rows = [[run["run_id"], r.unique_id, r.name, r.kind, r.relation, r.status, r.started_at, r.finished_at,
             r.seconds, r.rows, r.message or None] for r in results]
    for i in range(0, len(rows), 200):
        chunk = rows[i:i + 200]
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
        con.execute(f"insert into _duckrec.node_runs values {values}", [v for row in chunk for v in row])
