"""Load seed CSV files into typed tables; a row that does not parse stops the seed."""
from __future__ import annotations

from pathlib import Path

from duckrec.core.errors import NodeError
from duckrec.execute.seed_csv import read_header, unterminated_quote_line
from duckrec.warehouse.relation_docs import declare_not_null, persist_docs
from duckrec.core.nodes import Node, Project
from duckrec.core.sql import quote_identifier, sql_string


def _first_lines(message: str) -> str:
    """DuckDB's message without the statement it echoes (duckrec's wrapper, not the user's file)."""
    return message.split("\n\nLINE 1:")[0].strip()


def load_seed(con, project: Project, node: Node) -> int:
    """Create the seed's table; returns its row count. Nothing is replaced when a row is bad."""
    import duckdb

    rel = node.path
    path = Path(rel) if Path(rel).is_absolute() else project.root / rel
    if not path.is_file():
        raise NodeError(f"seed {node.name}: file not found (set seeds.{node.name}.+file in project.yml "
                        f"or add {node.name}.csv to {project.paths['seeds']}/)", path=rel)
    delimiter = str(node.config.get("delimiter") or ",")
    quote = str(node.config.get("quote") or '"')
    names = read_header(path, rel, delimiter)
    declared = {str(k).strip(): str(v) for k, v in (node.config.get("column_types") or {}).items()}
    unknown = [c for c in declared if c not in names]
    if unknown:
        raise NodeError(f"seed {node.name}: column_types names {unknown}, which the header lacks; "
                        f"the header has {names}", path=rel, line=1)
    types = ", ".join(f"{sql_string(k)}: {sql_string(v)}" for k, v in declared.items())
    sql = (f"create or replace table {node.relation} as select * from read_csv({sql_string(str(path))}, "
           f"header = true, delim = {sql_string(delimiter)}, quote = {sql_string(quote)}, escape = {sql_string(quote)}, "
           f"names = [{', '.join(sql_string(n) for n in names)}], "
           f"{'types = {' + types + '}, ' if types else ''}store_rejects = true, "
           f"rejects_table = 'duckrec_seed_rejects', rejects_scan = 'duckrec_seed_scans')")
    con.execute(f'create schema if not exists "{node.schema}"')
    con.execute("begin transaction")
    try:
        # store_rejects rather than a strict read: on some malformed files the strict
        # reader's sniffer silently loads nothing, while the rejects table names every bad row
        n_rows = con.execute(sql).fetchall()[0][0]
        bad = con.execute(
            "select line, column_name, error_type, error_message, count(*) over () "
            "from duckrec_seed_rejects order by line limit 5").fetchall()
        if bad:
            total = bad[0][4]
            con.execute("rollback")
            first = bad[0]
            details = "; ".join(
                f"line {line}" + (f", column {col}" if col else "") + f": {etype}: {msg}"
                for line, col, etype, msg, _ in bad)
            raise NodeError(f"seed {node.name}: {total} row(s) do not parse ({details}). "
                            f"Fix the file or its column_types; nothing downstream was built.",
                            path=rel, line=int(first[0]))
        if project.config_file != "project.yml":
            _dbt_types(con, node, declared)
        con.execute("commit")
    except duckdb.Error as e:
        con.execute("rollback")
        line = unterminated_quote_line(path, quote, delimiter)
        if line is not None:
            raise NodeError(f"seed {node.name}: line {line}: a field opens with {quote} and its quote is never "
                            f"closed, so the rest of the file would be one value. Close the quote (write a "
                            f"{quote} inside a quoted field as {quote}{quote}); nothing downstream was built.",
                            path=rel, line=line) from None
        raise NodeError(f"seed {node.name}: cannot load: {_first_lines(str(e))}", path=rel) from None
    finally:
        con.execute("drop table if exists duckrec_seed_rejects; drop table if exists duckrec_seed_scans")
    declare_not_null(con, node)
    persist_docs(con, node, "table")
    return n_rows


def _dbt_types(con, node: Node, declared: dict[str, str]) -> None:
    """dbt-duckdb's seed types: a whole-number column is INTEGER (DuckDB's reader says BIGINT),
    unless a value does not fit, where dbt would fail and duckrec keeps BIGINT."""
    # describe answers in a fraction of a millisecond; duckdb_columns() scans the whole catalogue
    cols = [row[0] for row in con.execute(f"describe {node.relation}").fetchall()
            if row[1] == "BIGINT" and row[0] not in declared]
    if not cols:
        return
    quoted = [quote_identifier(c) for c in cols]
    fits = con.execute("select " + ", ".join(f"coalesce(min({q}) >= -2147483648 and max({q}) < 2147483648, true)"
                                             for q in quoted) + f" from {node.relation}").fetchone()
    alters = [f"alter table {node.relation} alter {q} type integer" for q, ok in zip(quoted, fits) if ok]
    if alters:
        con.execute("; ".join(alters))


def load_any_seed(con, project: Project, node: Node, full_refresh: bool, log) -> tuple[int, str]:
    """Load a seed of any kind: one file, a glob of files, or an optional seed whose file is
    absent (an empty table). Returns its rows and a warning ('' when there is none)."""
    from duckrec.execute.seed_checks import is_optional, load_absent_seed
    from duckrec.parser.files import seed_paths
    from duckrec.execute.seed_globs import is_glob, load_glob_seed

    if is_optional(node) and not seed_paths(project, node) and not _loaded_before(con, node):
        return 0, load_absent_seed(con, project, node)
    if is_glob(node.path):
        # a glob whose loaded files vanished fails there, optional or not: rows cannot be taken back
        return load_glob_seed(con, project, node, full_refresh, log)
    return load_seed(con, project, node), ""


def _loaded_before(con, node: Node) -> bool:
    """Whether a glob seed has files recorded as loaded (in _duckrec.seed_files)."""
    exists = con.execute("select count(*) from duckdb_tables() where database_name = current_database() "
                         "and schema_name = '_duckrec' and table_name = 'seed_files'").fetchone()[0]
    return bool(exists) and bool(con.execute("select count(*) from _duckrec.seed_files where seed = ?",
                                             [node.name]).fetchone()[0])
