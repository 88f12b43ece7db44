"""The SQL of dbt's generic data tests (unique, not_null, accepted_values, relationships)."""
from __future__ import annotations

from duckrec.core.errors import NodeError
from duckrec.core.nodes import Node, Project
from duckrec.render.resolve import relation_call, runtime
from duckrec.core.sql import sql_literal


def _relation(project: Project, text: str, where_used: Node) -> str:
    call = relation_call(text)
    if call is None:
        raise NodeError(f"test {where_used.name}: cannot resolve {text!r}; expected ref('model') or "
                        "source('a', 'b')", path=where_used.path)
    fn, args = call
    resolver = runtime(project, where_used)
    try:
        target = resolver.ref(*args) if fn == "ref" else resolver.source(*args)
    except TypeError:
        raise NodeError(f"test {where_used.name}: {text!r} has the wrong number of arguments",
                        path=where_used.path) from None
    return target.relation


def generic_sql(project: Project, node: Node) -> str:
    spec = node.test or {}
    model = project.by_name(spec["model"])
    assert model is not None
    rel = model.relation
    where = node.config.get("where")
    if where:
        rel = f"(select * from {rel} where {where})"
    col = spec["column"]
    kw = spec.get("kwargs") or {}
    kind = spec["type"]
    if kind == "unique":
        # dbt's query (group by the value, keep the groups of more than one row), but over the
        # rows whose 64-bit hash repeats only: grouping 120M distinct string keys at once ran
        # out of a 1.28 GB memory_limit (10M-event build), grouping their hashes does not, and
        # equal values have equal hashes, so the exact check on the rest finds every duplicate
        return (f"with repeated_hashes as (select hash({col}) as value_hash from {rel} where {col} is not null "
                f"group by value_hash having count(*) > 1) "
                f"select {col} as unique_field, count(*) as n_records from {rel} "
                f"where {col} is not null and hash({col}) in (select value_hash from repeated_hashes) "
                f"group by {col} having count(*) > 1")
    if kind == "not_null":
        return f"select * from {rel} where {col} is null"
    if kind == "accepted_values":
        quote = kw.get("quote", True)
        values = ", ".join(sql_literal(v) if quote else str(v) for v in kw["values"])
        return (f"select {col} as value_field, count(*) as n_records from {rel} "
                f"where {col} is not null and {col} not in ({values}) group by {col}")
    if kind == "relationships":
        parent = _relation(project, str(kw["to"]), node)
        field = kw["field"]
        return (f"select child.{col} as from_field from {rel} as child left join {parent} as parent "
                f"on child.{col} = parent.{field} where child.{col} is not null and parent.{field} is null")
    raise NodeError(f"unknown test type {kind!r}", path=node.path)
