"""What a BI tool reads about a relation: YAML descriptions persisted as DuckDB comments
(dbt's `persist_docs`), and NOT NULL on the columns a project declares never null."""
from __future__ import annotations

from duckrec.core.nodes import Node
from duckrec.core.sql import sql_string


def persist_docs(con, node: Node, kind: str) -> None:
    """COMMENT ON the relation and its columns, as `persist_docs: {relation: true, columns: true}`
    asks. `kind` is TABLE or VIEW. YAML columns the relation lacks are left alone (the model's
    tests or contract report those)."""
    config = node.config.get("persist_docs") or {}
    if not isinstance(config, dict):
        return
    statements = []
    if config.get("relation") and node.description:
        statements.append(f"comment on {kind} {node.relation} is {_comment(node.description)}")
    described = [c for c in node.columns.values() if c.description]
    if config.get("columns") and described:
        present = {r[0] for r in con.execute(
            "select column_name from duckdb_columns() where database_name = current_database() "
            "and schema_name = ? and table_name = ?", [node.schema, node.config.get("alias") or node.name]).fetchall()}
        statements += [f'comment on column {node.relation}."{c.name}" is {_comment(c.description)}'
                       for c in described if c.name in present]
    if statements:
        # one transaction: a commit per statement costs a catalogue write each
        con.execute("begin transaction;\n" + ";\n".join(statements) + ";\ncommit")


def declare_not_null(con, node: Node) -> None:
    """ALTER ... SET NOT NULL on the columns declared never null (a not_null test of severity
    error without `where`, or a not_null constraint). A column that holds NULLs keeps
    allowing them: its not_null test then fails and names the rows, which says more than
    a constraint error would."""
    import duckdb

    for column in node.columns.values():
        if getattr(column, "not_null", False):
            try:
                con.execute(f'alter table {node.relation} alter column "{column.name}" set not null')
            except duckdb.ConstraintException:
                pass
            except duckdb.BinderException:  # a declared column the result lacks
                pass


def refresh_docs(con, node: Node, kind: str) -> None:
    """Bring a reused relation's comments in line with the project's docs (a metadata-only
    edit): set what is described, clear what no longer is."""
    config = node.config.get("persist_docs") or {}
    config = config if isinstance(config, dict) else {}
    name = node.config.get("alias") or node.name
    wanted = node.description if config.get("relation") and node.description else None
    statements = [f"comment on {kind} {node.relation} is {_comment(wanted) if wanted else 'NULL'}"]
    present = [r[0] for r in con.execute(
        "select column_name from duckdb_columns() where database_name = current_database() "
        "and schema_name = ? and table_name = ?", [node.schema, name]).fetchall()]
    for column in present:
        described = node.columns.get(column)
        text = described.description if config.get("columns") and described and described.description else None
        statements.append(f'comment on column {node.relation}."{column}" is {_comment(text) if text else "NULL"}')
    con.execute("begin transaction;\n" + ";\n".join(statements) + ";\ncommit")


def _comment(text: str) -> str:
    """A description as a comment's literal, its whitespace runs made one space."""
    return sql_string(" ".join(text.split()))
