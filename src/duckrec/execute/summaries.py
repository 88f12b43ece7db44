"""A node's `summary` config: a query run after the node builds, whose rows are printed in
the build's end summary (e.g. how many rows a model rejected, and why).

The query is rendered like the model itself, so `{{ this }}` and `ref()` work; it may read the
node and its dependencies.
"""
from __future__ import annotations

import dataclasses

from duckrec.core.errors import DuckrecError
from duckrec.execute.materialize import clean_sql
from duckrec.core.nodes import Node
from duckrec.render.renderer import Renderer


def summary_lines(con, renderer: Renderer, node: Node) -> list[str]:
    """`<schema>.<name>: <row>` for each row of the node's summary query (its first column)."""
    sql = node.config.get("summary")
    if not sql:
        return []
    import duckdb

    label = f"{node.schema}.{node.config.get('alias') or node.name}"
    try:
        text = renderer.compile(dataclasses.replace(node, raw_code=str(sql)))
        rows = con.execute(clean_sql(text)).fetchall()
    except (DuckrecError, duckdb.Error) as e:
        return [f"{label}: warning: its summary query failed: {str(e).splitlines()[0]}"]
    return [f"{label}: {row[0]}" for row in rows if row and row[0] is not None]
