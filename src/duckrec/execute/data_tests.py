"""Running dbt's data tests (generic and singular) and describing their failures; the SQL of a
generic test is duckrec.render.test_sql's."""
from __future__ import annotations

from duckrec.execute.materialize import clean_sql
from duckrec.core.nodes import Node

SAMPLE_ROWS = 5


def run_test(con, sql: str) -> tuple[int, list[str], list[tuple]]:
    """Failing-row count, column names and a few failing rows."""
    body = clean_sql(sql)
    n = con.execute(f"select count(*) from (\n{body}\n) as failures").fetchall()[0][0]
    if not n:
        return 0, [], []
    cur = con.execute(f"select * from (\n{body}\n) as failures limit {SAMPLE_ROWS}")
    return n, [d[0] for d in cur.description], cur.fetchall()


def describe_failures(node: Node, n: int, columns: list[str], rows: list[tuple]) -> str:
    what = node.test.get("type") if node.test else "test"
    target = ""
    if node.test and node.test.get("model"):
        target = f" on {node.test['model']}" + (f".{node.test['column']}" if node.test.get("column") else "")
    sample = "; ".join(", ".join(f"{c}={v!r}" for c, v in zip(columns, r)) for r in rows)
    return f"{what}{target}: {n} failing row(s), e.g. {sample}"
