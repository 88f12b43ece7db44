"""`state:modified` selection: the nodes new or changed since the last build, against the node
state the published warehouse keeps."""
from __future__ import annotations

from pathlib import Path

from duckrec.core.errors import WarehouseError
from duckrec.core.nodes import Project
from duckrec.state.fingerprint import Fingerprints
from duckrec.state.reuse import read_state
from duckrec.core.sql import sql_string


def modified(project: Project, renderer, stored: dict) -> set[str]:
    """state:modified: nodes that are new or whose own definition changed since the last build."""
    fps = Fingerprints(project, renderer)
    out = set()
    for uid, node in project.nodes.items():
        old = stored.get(uid)
        if old is None or old.definition != fps.definition(node):
            out.add(uid)
        elif node.kind == "seed" and old.detail.get("files") != fps.data(node):
            out.add(uid)
    return out


def modified_since_last_build(project: Project, renderer, warehouse: Path) -> set[str]:
    """`state:modified` against the published warehouse's node state. A warehouse that
    exists but cannot be read is an error, never "everything modified"."""
    if not warehouse.exists():
        return modified(project, renderer, {})
    import duckdb

    try:
        con = duckdb.connect(":memory:")
        con.execute(f"attach {sql_string(str(warehouse))} as published (read_only)")
        con.execute("use published")
    except duckdb.Error as e:
        raise WarehouseError(f"state: selection compares the project with the node state of the published "
                             f"warehouse, which cannot be read ({e}). Fix or move the file, or select without "
                             "state:.", path=str(warehouse)) from None
    try:
        return modified(project, renderer, read_state(con))
    finally:
        con.close()
