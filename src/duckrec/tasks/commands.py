"""The commands a dbt user types next: debug, parse, retry, run-operation, and Jinja in
`--inline` SQL (show, compile)."""
from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import Any

from duckrec.core.errors import DuckrecError, ProjectError
from duckrec.core.nodes import Node, Project


def inline_node(project: Project, sql: str) -> Node:
    """An ad-hoc query as a node outside the DAG: its refs resolve, and are not checked against
    dependencies it does not have."""
    return Node(unique_id="sql_operation.inline", kind="model", name="inline", path="<inline>", raw_code=sql,
                config={"materialized": "ephemeral"})


def render_inline(project: Project, target: str, sql: str) -> str:
    from duckrec.render.renderer import Renderer

    return Renderer(project, target).compile(inline_node(project, sql)).strip().rstrip(";")


def parse(project: Project, target: str, out: Callable[[str], None]) -> int:
    from duckrec.artifacts import target as artifacts
    from duckrec import graph

    graph.link(project)
    artifacts.write_manifest(project, target)
    kinds = [n.kind for n in project.nodes.values()]
    out(f"parsed {kinds.count('model')} models, {kinds.count('seed')} seeds, {kinds.count('test')} tests, "
        f"{len(project.sources)} sources, {len(project.doc_blocks)} docs blocks from {project.config_file}; "
        f"wrote {project.paths['target']}/manifest.json")
    return 0


def debug(project: Project, target: str, out: Callable[[str], None]) -> int:
    """What duckrec reads and where it builds, and whether the warehouse opens."""
    import duckdb

    from duckrec import __version__

    ok = True
    out(f"duckrec {__version__}, duckdb {duckdb.__version__}, python {sys.version.split()[0]}")
    out(f"project: {project.name} ({project.root / project.config_file})")
    if project.config_file != "project.yml":
        from duckrec.parser.dbt_project import profiles_path

        found = profiles_path(project.root)
        out(f"profiles.yml: {found or 'not found (building into the default warehouse)'}")
    for key in ("sql", "python_models", "models", "seeds", "macros", "data_tests", "target"):
        path = project.path(key)
        out(f"  {key:<14} {project.paths[key]:<24} {'ok' if path.is_dir() else 'missing'}")
    path = project.warehouse_path(target)
    out(f"target: {target}; warehouse: {path}")
    for warning in project.warnings:
        out(f"  warning: {warning}")
    if path.exists():
        from duckrec.warehouse.readers import connect_read_only

        try:
            con = connect_read_only(path)
            con.execute("select 1").fetchall()
            con.close()
            out("  connection: ok (read-only)")
        except Exception as e:  # noqa: BLE001 - the point of debug is to say what fails
            ok = False
            out(f"  connection: FAILED: {e}")
    else:
        out("  connection: the warehouse does not exist yet (the first build creates it)")
    try:
        from duckrec import graph

        graph.link(project)
        out(f"  project: ok ({len(project.nodes)} nodes)")
    except DuckrecError as e:
        ok = False
        out(f"  project: {e}")
    ok = _debug_seeds(project, out) and ok
    out("All checks passed!" if ok else "Some checks failed.")
    return 0 if ok else 1


def _debug_seeds(project: Project, out: Callable[[str], None]) -> bool:
    """A line per seed: its file(s) found and readable, absent (optional), or what is wrong."""
    from duckrec.execute.seed_checks import check_seeds

    checks = check_seeds(project, sorted(u for u, n in project.nodes.items() if n.kind == "seed"))
    for check in checks:
        if check.problem:
            state = f"FAILED: {check.problem}"
        elif check.absent:
            state = "absent: optional, builds as an empty table (warning)"
        else:
            state = f"ok ({len(check.files)} files)" if len(check.files) > 1 else "ok"
        out(f"  seed {check.seed:<12} {check.path:<24} {state}")
    return not any(c.problem for c in checks)


def retry_selection(project: Project) -> tuple[str, list[str]]:
    """The command of the last run and what to run again: what failed, errored or was skipped."""
    import json

    from duckrec.artifacts.dbt import internal_ids

    path = project.path("target") / "run_results.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProjectError(f"retry reruns what failed in the last run, and there is no {project.paths['target']}"
                           "/run_results.json yet") from None
    command = (data.get("args") or {}).get("which") or "build"
    back = internal_ids(project)
    # a run that published nothing (all or nothing) is retried whole: its successes never landed
    redo = ("error", "fail", "skipped", "runtime error")
    whole = (data.get("args") or {}).get("published") is False
    again = [back[r["unique_id"]] for r in data.get("results", [])
             if (whole or r.get("status") in redo) and r.get("unique_id") in back]
    return command, again


def run_operation(project: Project, target: str, macro: str, args: dict[str, Any], wait: bool,
                  out: Callable[[str], None]) -> int:
    """Call a macro of sql/macros on the warehouse, as `dbt run-operation` does: the SQL it
    returns runs, and `run_query()` inside it runs at once; changes are published atomically."""
    import duckdb

    from duckrec.warehouse.build import Build
    from duckrec.warehouse.failures import disk_failure
    from duckrec.render.renderer import Renderer

    renderer = Renderer(project, target)
    path = project.warehouse_path(target)
    # left unpublished, the copy is removed; with --wait it says whom it waits for, as a build does
    with Build(path, wait=wait, warn=out, on_wait=lambda message, **_: out(message)) as build:
        con = build.con
        try:
            ctx_extra = {"run_query": lambda sql: _Result(con.execute(sql)),
                         "log": lambda msg, info=False: out(str(msg)) or ""}
            node = dataclasses.replace(inline_node(project, ""), name=f"operation {macro}")
            sql = renderer.call_macro(node, macro, args, ctx_extra)
            if sql.strip():
                con.execute(sql)
        except duckdb.Error as e:
            if disk_failure(e):
                raise
            raise DuckrecError(f"run-operation {macro}: SQL error: {e}") from None
        build.publish()
    out(f"run-operation {macro}: done")
    return 0


class _Result:
    """What run_query() returns: rows, and dbt's `.columns`/`.rows` for Jinja loops."""

    def __init__(self, cur):
        self.column_names = [d[0] for d in cur.description] if cur.description else []
        self.rows = cur.fetchall() if cur.description else []

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)
