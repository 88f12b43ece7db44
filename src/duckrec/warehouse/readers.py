"""Read-only access to the published warehouse, for BI tools, servers and duckrec's own
read-only commands."""
from __future__ import annotations

import os
from pathlib import Path

from duckrec.core.errors import DuckrecError, WarehouseError, WriterConnectedError
from duckrec.warehouse.locks import real_path
from duckrec.core.sql import sql_string


def open_reader(warehouse: str | os.PathLike, *, allow_files: bool = False):
    """A read-only connection on a fresh DuckDB instance that sees the latest published build.

    `duckdb.connect(path)` reuses a database instance already open on that path in the same
    process, so a long-running server that reconnects keeps seeing the build it first
    opened. This opens an in-memory instance and attaches the warehouse read-only, then
    (unless allow_files) turns off file access and locks the configuration, so the
    connection can neither write files nor attach others. Open one per query or request
    and close it after; the warehouse's schemas are queried as usual (`staging.events`).
    """
    import duckdb

    path = real_path(Path(warehouse))
    if path.is_dir():
        raise WarehouseError("this warehouse path is a directory, not a DuckDB file", path=str(warehouse))
    if not path.exists():
        raise DuckrecError("no warehouse here yet: run `duckrec build` first", path=str(warehouse))
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"attach {sql_string(str(path))} as warehouse (read_only)")
        con.execute("use warehouse")
        if not allow_files:
            con.execute("set enable_external_access = false")
            con.execute("set lock_configuration = true")
    except duckdb.Error as e:
        con.close()
        text = str(e)
        if "Could not set lock" in text:
            raise WriterConnectedError(
                "a read-write DuckDB connection is open on the warehouse, and while it is open DuckDB lets no "
                f"other process read the file ({text.splitlines()[0]}). Close it, or reconnect it read-only.",
                path=str(warehouse)) from None
        if "WAL" in text:
            raise WarehouseError(
                f"cannot open the warehouse: {text}. The log beside it ({path.name}.wal) was written by a "
                "read-write client against an older build; the next `duckrec build` sets it aside (or move it "
                "away yourself).", path=str(warehouse)) from None
        raise WarehouseError(f"cannot open the warehouse read-only ({text}); if the file is damaged, restore it "
                             "from a backup or move it aside and build again", path=str(warehouse)) from None
    return con


def insert_rows(con, table: str, types: list[str], rows: list[list]) -> None:
    """Append rows to `table` (columns in order, of `types`) with one statement and one list
    parameter per column: binding one parameter per value costs milliseconds per hundred."""
    if not rows:
        return
    columns = [list(c) for c in zip(*rows)]
    select = ", ".join(f"unnest(?::{t}[])" for t in types)
    con.execute(f"insert into {table} select {select}", columns)


def connect_read_only(warehouse: Path):
    return open_reader(warehouse)
