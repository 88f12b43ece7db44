"""Turn compiled SQL into relations: view, table, incremental (ephemeral is inlined)."""
from __future__ import annotations

import re

from duckrec.core.errors import NodeError
from duckrec.core.nodes import Node
from duckrec.warehouse.relation_docs import declare_not_null, persist_docs

TMP = "__duckrec_incoming"


class Catalog:
    """The build's schemas and relations, read once and kept current as nodes are built.

    Looking each node up in information_schema costs milliseconds that grow with the
    catalogue; a 500-model build would spend seconds on it.
    """

    def __init__(self, con, fresh: bool = False):
        if fresh:  # a warehouse file this build created: nothing in it yet
            self.relations: dict[tuple[str, str], str] = {}
            self.schemas = {"main"}
            return
        # duckdb_tables()/duckdb_views() answer several times faster than information_schema
        self.relations = {
            (s, n): t for s, n, t in con.execute(
                "select schema_name, table_name, 'BASE TABLE' from duckdb_tables() "
                "where database_name = current_database() and not temporary "
                "union all select schema_name, view_name, 'VIEW' from duckdb_views() "
                "where database_name = current_database() and not internal and not temporary").fetchall()}
        self.schemas = {r[0] for r in con.execute(
            "select schema_name from duckdb_schemas() where database_name = current_database()").fetchall()}

    def kind(self, node: Node) -> str | None:
        return self.relations.get((node.schema, node.config.get("alias") or node.name))

    def set(self, node: Node, kind: str | None) -> None:
        key = (node.schema, node.config.get("alias") or node.name)
        if kind is None:
            self.relations.pop(key, None)
        else:
            self.relations[key] = kind

    def ensure_schema(self, con, schema: str) -> None:
        if schema not in self.schemas:
            con.execute(f'create schema if not exists "{schema}"')
            self.schemas.add(schema)


_TRAILING_SEMICOLON = re.compile(r";(?:\s|--[^\n]*)*\Z")


def clean_sql(sql: str) -> str:
    """The statement without trailing semicolons (and comments after them), so it can be
    wrapped; callers put the closing parenthesis on a new line, so a trailing comment is safe.
    Leading lines are kept and wrappers open on the statement's first line, so DuckDB's
    `LINE n` is line n of the compiled file."""
    text = sql.rstrip()
    while (m := _TRAILING_SEMICOLON.search(text)) is not None:
        text = text[:m.start()].rstrip()
    return text


def _atomic(con, statements: list[str]) -> list:
    """Run statements as one transaction; a single statement is atomic on its own."""
    if len(statements) == 1:
        return con.execute(statements[0]).fetchall()
    con.execute("begin transaction")
    try:
        out = []
        for stmt in statements:
            out = con.execute(stmt).fetchall()
        con.execute("commit")
        return out
    except Exception:
        con.execute("rollback")
        raise


def materialize(con, catalog: Catalog, node: Node, sql: str, full_refresh: bool = False) -> int | None:
    """Build the node's relation from `sql`; returns its row count (None for views)."""
    mat = node.materialized
    if mat == "ephemeral":
        return None
    catalog.ensure_schema(con, node.schema)
    existing = catalog.kind(node)
    sql = clean_sql(sql)
    if (node.config.get("contract") or {}).get("enforced"):
        check_contract(con, node, sql)
    if mat == "view":
        drop = [f"drop table {node.relation}"] if existing == "BASE TABLE" else []
        _atomic(con, drop + [f"create or replace view {node.relation} as {sql}\n"])
        catalog.set(node, "VIEW")
        persist_docs(con, node, "view")
        return None
    if mat == "incremental" and existing == "BASE TABLE" and not full_refresh:
        rows = _incremental(con, node, sql)
        persist_docs(con, node, "table")
        return rows
    drop = [f"drop view {node.relation}"] if existing == "VIEW" else []
    create = f"create or replace table {node.relation} as {sql}\n"
    if _key_columns(node):
        con.execute("begin transaction")
        try:
            for stmt in drop:
                con.execute(stmt)
            rows = con.execute(create).fetchall()[0][0]
            _check_unique_key_nulls(con, node, node.relation)
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
    else:
        rows = _atomic(con, drop + [create])[0][0]
    catalog.set(node, "BASE TABLE")
    declare_not_null(con, node)
    persist_docs(con, node, "table")
    return rows


def is_incremental_run(catalog: Catalog, node: Node, full_refresh: bool) -> bool:
    return node.materialized == "incremental" and not full_refresh and catalog.kind(node) == "BASE TABLE"


def _key_columns(node: Node) -> list[str]:
    key = node.config.get("unique_key")
    if not key:
        return []
    return [key] if isinstance(key, str) else list(key)


def _check_unique_key_nulls(con, node: Node, relation: str) -> None:
    keys = _key_columns(node)
    if not keys:
        return
    missing = [k for k in keys if k not in dict(_columns(con, relation))]
    if missing:
        raise NodeError(f"model {node.name}: unique_key {missing} is not a column of the model's result",
                        path=node.path)
    cond = " or ".join(f'"{k}" is null' for k in keys)
    n = con.execute(f"select count(*) from {relation} where {cond}").fetchall()[0][0]
    if n:
        raise NodeError(f"model {node.name}: {n} row(s) have NULL in unique_key {keys}; a NULL key never matches "
                        "an existing row, so delete+insert would duplicate them. Filter or coalesce the key.",
                        path=node.path)


def _columns(con, relation: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(f"describe {relation}").fetchall()]


def _incremental(con, node: Node, sql: str) -> int:
    con.execute("begin transaction")
    try:
        con.execute(f"create or replace temp table {TMP} as {sql}\n")
        _check_unique_key_nulls(con, node, TMP)
        _sync_schema(con, node)
        keys = _key_columns(node)
        strategy = node.config.get("incremental_strategy") or ("delete+insert" if keys else "append")
        if strategy == "delete+insert" and not keys:
            raise NodeError(f"model {node.name}: incremental_strategy 'delete+insert' needs a unique_key",
                            path=node.path)
        if strategy == "delete+insert":
            key_list = ", ".join(f'"{k}"' for k in keys)
            con.execute(f"delete from {node.relation} where ({key_list}) in (select {key_list} from {TMP})")
        target_cols = [c for c, _ in _columns(con, node.relation)]
        incoming = [c for c, _ in _columns(con, TMP) if c in target_cols]
        cols = ", ".join(f'"{c}"' for c in incoming)
        con.execute(f"insert into {node.relation} ({cols}) select {cols} from {TMP}")
        con.execute(f"drop table {TMP}")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return con.execute(f"select count(*) from {node.relation}").fetchall()[0][0]


def _sync_schema(con, node: Node) -> None:
    policy = node.config.get("on_schema_change", "fail")
    old = dict(_columns(con, node.relation))
    new = dict(_columns(con, TMP))
    added = [c for c in new if c not in old]
    removed = [c for c in old if c not in new]
    if not added and not removed:
        return
    if policy == "fail":
        raise NodeError(
            f"model {node.name}: the result's columns changed (new: {added or 'none'}, gone: {removed or 'none'}) "
            "and on_schema_change is 'fail'. Set on_schema_change to append_new_columns or sync_all_columns, "
            "or rebuild with --full-refresh.", path=node.path)
    if policy in ("append_new_columns", "sync_all_columns"):
        for c in added:
            con.execute(f'alter table {node.relation} add column "{c}" {new[c]}')
    if policy == "sync_all_columns":
        for c in removed:
            con.execute(f'alter table {node.relation} drop column "{c}"')


def check_contract(con, node: Node, sql: str) -> None:
    """An enforced contract: the result has exactly the YAML columns, with their data_type."""
    found = [(r[0], r[1]) for r in con.execute(f"describe {sql}\n").fetchall()]
    declared = [(c.name, c.data_type) for c in node.columns.values()]
    problems = []
    names = [n for n, _ in found]
    missing = [n for n, _ in declared if n not in names]
    extra = [n for n in names if n not in {d for d, _ in declared}]
    if missing:
        problems.append(f"missing columns {missing}")
    if extra:
        problems.append(f"columns not in the contract {extra}")
    types = dict(found)
    for name, data_type in declared:
        if data_type and name in types and types[name].upper() != str(data_type).upper():
            problems.append(f"column {name}: expected {str(data_type).upper()}, found {types[name]}")
    if problems:
        raise NodeError(f"model {node.name} breaks its enforced contract: " + "; ".join(problems)
                        + ". The previous table is kept.", path=node.path)
