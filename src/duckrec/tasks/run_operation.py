"""`duckrec run-operation`: a macro of sql/macros called on the warehouse."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from duckrec.core.errors import DuckrecError
from duckrec.core.nodes import Project
import dataclasses

from duckrec.tasks.compile import inline_node


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
