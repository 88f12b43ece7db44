"""A target's DuckDB settings applied to the build's connection: `threads`, `settings` and
`extensions` (as dbt-duckdb's profiles.yml has them), and `--threads`."""
from __future__ import annotations

import os

from duckrec.core.errors import ProjectError
from duckrec.core.nodes import Project
from duckrec.core.sql import sql_literal


def configure(con, project: Project, target: str, threads: int | None = None) -> None:
    import duckdb

    spec = project.targets.get(target) or {}
    where = f"target {target!r}"
    n = threads or spec.get("threads")
    try:
        if n:
            # dbt's threads are concurrent models; here they cap DuckDB's own threads
            con.execute(f"set threads = {max(1, min(int(n), os.cpu_count() or 1))}")
        for key, value in (spec.get("settings") or {}).items():
            con.execute(f'set "{key}" = {sql_literal(value)}')
    except (duckdb.Error, ValueError) as e:
        raise ProjectError(f"{where}: a setting DuckDB refuses: {e}") from None
    for ext in spec.get("extensions") or []:
        name = ext if isinstance(ext, str) else str(ext.get("name", ext))
        try:
            con.execute(f"load {name}")
        except duckdb.Error:
            try:
                con.execute(f"install {name}")
                con.execute(f"load {name}")
            except duckdb.Error as e:
                raise ProjectError(f"{where}: extension {name!r} cannot be loaded: {e}") from None
