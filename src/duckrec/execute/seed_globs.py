"""Seeds fed by a glob of files (`+file: events/*.csv`, CSV or Parquet) that grows over time.

Each build loads only the files it has not loaded yet; `_duckrec.seed_files` remembers each
loaded file's path, size and content hash (in the warehouse, so it is published with the
table it describes). The rules:
- a new file is appended to the seed's table;
- a file already loaded, unchanged (same path, size and hash), is not read again;
- a loaded file that changed or vanished fails the seed with a message naming it: rows
  already loaded cannot be taken back one by one. Restore the file, or rebuild with
  `--full-refresh`, which reloads every file that matches now;
- a row that does not parse is kept, not lost: a field that does not convert to its column
  type becomes NULL (a row with the wrong number of fields is all NULL), so the models
  downstream reject and count it like any bad row; the build log names the file and lines.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from duckrec.core.errors import NodeError
from duckrec.core.nodes import Node, Project
from duckrec.parser.files import seed_paths
from duckrec.execute.seed_csv import read_header
from duckrec.core.sql import quote_identifier, sql_string

STATE_DDL = """
create schema if not exists _duckrec;
create table if not exists _duckrec.seed_files (
    seed varchar, path varchar, size bigint, hash varchar, rows bigint, malformed bigint,
    loaded_at timestamp);
"""
PARQUET = (".parquet", ".parq", ".pq")


def is_glob(path: str) -> bool:
    return any(c in path for c in "*?[")


def _exists(con, node: Node) -> bool:
    return bool(con.execute("select count(*) from duckdb_tables() where schema_name = ? and table_name = ? "
                            "and database_name = current_database()",
                            [node.schema, node.config.get("alias") or node.name]).fetchone()[0])


def load_glob_seed(con, project: Project, node: Node, full_refresh: bool,
                   log: Callable[[str], None]) -> tuple[int, str]:
    """Load the files of a glob seed that are new since the last build; returns the table's
    rows and a warning naming the files with malformed rows ('' when there are none)."""
    from duckrec.state.fingerprint import file_hash

    files = seed_paths(project, node)
    if not files:
        raise NodeError(f"seed {node.name}: no file matches {node.path!r} (seeds.{node.name}.+file in project.yml)",
                        path=node.path)
    con.execute(STATE_DDL)
    current = {_rel(project, f): (f, f.stat().st_size) for f in files}
    fresh = full_refresh or not _exists(con, node)
    loaded = {} if fresh else {p: (s, h) for p, s, h in con.execute(
        "select path, size, hash from _duckrec.seed_files where seed = ?", [node.name]).fetchall()}
    vanished = sorted(set(loaded) - set(current))
    hashes = {}
    changed = []
    for rel, (f, size) in current.items():
        if rel in loaded:
            old_size, old_hash = loaded[rel]
            if size != old_size or (hashes.setdefault(rel, file_hash(f)) != old_hash):
                changed.append(f"{rel} (size {old_size} -> {size} bytes)" if size != old_size else rel)
    if vanished or changed:
        what = []
        if changed:
            what.append(f"changed since it was loaded: {', '.join(changed)}")
        if vanished:
            what.append(f"loaded before but gone now: {', '.join(vanished)}")
        raise NodeError(f"seed {node.name}: file(s) {'; '.join(what)}. Rows already loaded cannot be taken back "
                        "one by one: restore the file(s), or run `duckrec build --full-refresh` to reload every "
                        "file that matches now. The published tables are unchanged.", path=node.path)
    new = [rel for rel in sorted(current) if rel not in loaded]
    warnings = []
    con.execute(f'create schema if not exists "{node.schema}"')
    con.execute("begin transaction")
    try:
        if fresh:
            con.execute("delete from _duckrec.seed_files where seed = ?", [node.name])
            _create(con, node, current[new[0]][0], new[0])
        for rel in new:
            f, size = current[rel]
            rows, malformed, detail = _append(con, node, f, rel)
            con.execute("insert into _duckrec.seed_files values (?, ?, ?, ?, ?, ?, now()::timestamp)",
                        [node.name, rel, size, hashes.get(rel) or file_hash(f), rows, malformed])
            log(f"loaded {rel}: {rows} rows" + (f", {malformed} malformed ({detail})" if malformed else ""))
            if malformed:
                warnings.append(f"{rel}: {malformed} malformed row(s) ({detail})")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    if not new:
        log(f"no new file among {len(current)} (all loaded before)")
    warning = ""
    if warnings:
        warning = (f"seed {node.name}: " + "; ".join(warnings) + ". Their unparsable fields are NULL, so "
                   "the models downstream reject and count them (staging.rejected_events).")
    return con.execute(f"select count(*) from {node.relation}").fetchone()[0], warning


def _rel(project: Project, f: Path) -> str:
    return str(f.relative_to(project.root)) if f.is_relative_to(project.root) else str(f)


def _reader(node: Node, f: Path, rel: str, types: dict[str, str] | None = None) -> str:
    if f.suffix.lower() in PARQUET:
        return f"read_parquet({sql_string(str(f))})"
    delimiter = str(node.config.get("delimiter") or ",")
    quote = str(node.config.get("quote") or '"')
    names = read_header(f, rel, delimiter)
    typed = ""
    if types is not None:
        typed = ("types = {" + ", ".join(f"{sql_string(n)}: {sql_string(types[n])}" for n in names if n in types) + "}, "
                 "store_rejects = true, rejects_table = 'duckrec_seed_rejects', rejects_scan = 'duckrec_seed_scans', ")
    return (f"read_csv({sql_string(str(f))}, header = true, delim = {sql_string(delimiter)}, quote = {sql_string(quote)}, "
            f"escape = {sql_string(quote)}, {typed}names = [{', '.join(sql_string(n) for n in names)}])")


def _create(con, node: Node, first: Path, rel: str) -> None:
    """The table's columns: those of the first file, typed by column_types, else as DuckDB infers them."""
    import duckdb

    declared = {str(k).strip(): str(v) for k, v in (node.config.get("column_types") or {}).items()}
    try:
        found = con.execute(f"describe select * from {_reader(node, first, rel)}").fetchall()
    except duckdb.Error as e:
        raise NodeError(f"seed {node.name}: cannot read {rel}: {e}", path=rel) from None
    names = [r[0] for r in found]
    unknown = [c for c in declared if c not in names]
    if unknown:
        raise NodeError(f"seed {node.name}: column_types names {unknown}, which {rel} lacks; it has {names}",
                        path=rel, line=1)
    cols = ", ".join(f"{quote_identifier(n)} {declared.get(n, t)}" for n, t in ((r[0], r[1]) for r in found))
    con.execute(f"create or replace table {node.relation} ({cols})")


def _append(con, node: Node, f: Path, rel: str) -> tuple[int, int, str]:
    """Insert one file's rows; returns (rows, malformed rows, where they are)."""
    import duckdb

    columns = con.execute("select column_name, data_type from duckdb_columns() where schema_name = ? and "
                          "table_name = ? and database_name = current_database() order by column_index",
                          [node.schema, node.config.get("alias") or node.name]).fetchall()
    names = [c for c, _ in columns]
    parquet = f.suffix.lower() in PARQUET
    try:
        con.execute("drop table if exists duckrec_seed_rejects; drop table if exists duckrec_seed_scans")
        reader = _reader(node, f, rel, None if parquet else dict(columns))
        present = [r[0] for r in con.execute(f"describe select * from {reader}").fetchall()]
        missing = [c for c in names if c not in present]
        if missing:
            raise NodeError(f"seed {node.name}: {rel} lacks column(s) {missing}; the seed's columns are {names}",
                            path=rel, line=1)
        select = ", ".join(f"try_cast({quote_identifier(c)} as {t})" if parquet else quote_identifier(c) for c, t in columns)
        rows = con.execute(f"insert into {node.relation} select {select} from {reader}").fetchone()[0]
        if parquet:
            return rows, 0, ""
        bad = con.execute("select distinct line, csv_line, error_type::varchar from duckrec_seed_rejects "
                          "order by line").fetchall()
        if not bad:
            return rows, 0, ""
        seen: set[int] = set()
        values: list[list] = []
        for line, text, error in bad:
            if line in seen:
                continue
            seen.add(line)
            values.append(_salvage(text, error, present, names, str(node.config.get("delimiter") or ","),
                                   str(node.config.get("quote") or '"')))
        casts = ", ".join(f"try_cast(v[{i + 1}] as {t})" for i, (_, t) in enumerate(columns))
        con.execute(f"insert into {node.relation} select {casts} from (select unnest(?::varchar[][]) as v)",
                    [values])
        lines = sorted(seen)
        detail = ("lines " if len(lines) > 1 else "line ") + ", ".join(map(str, lines[:5])) + (
            ", ..." if len(lines) > 5 else "")
        return rows + len(lines), len(lines), detail
    except duckdb.Error as e:
        raise NodeError(f"seed {node.name}: cannot load {rel}: {e}", path=rel) from None
    finally:
        con.execute("drop table if exists duckrec_seed_rejects; drop table if exists duckrec_seed_scans")


def _salvage(text: str, error: str, header: list[str], names: list[str], delimiter: str, quote: str) -> list:
    """A rejected line's fields, as text, in the seed's column order: a field that does not
    convert becomes NULL later; a line with the wrong number of fields (or quotes) keeps none,
    so it can never pass as a good row."""
    fields = (text or "").rstrip("\r\n").split(delimiter)
    if error != "CAST" or quote in (text or "") or len(fields) != len(header):
        return [None] * len(names)
    by_name = dict(zip(header, fields))
    return [by_name.get(n) for n in names]
