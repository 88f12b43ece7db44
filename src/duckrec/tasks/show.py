"""`duckrec show`: the rows of a model, a seed or one read-only query, from the published warehouse."""
from __future__ import annotations

import sys
from typing import Any



def show(project, args) -> int:
    from duckrec.core.errors import DuckrecError as Err

    args.model = args.model or args.show_select
    if bool(args.model) == bool(args.inline):
        raise Err("show needs a model name (or -s name) or --inline 'select ...' (one of the two)")
    if args.model:
        node = project.by_name(args.model)
        if node is None:
            from duckrec.core.errors import did_you_mean

            raise Err(f"no model or seed named {args.model!r}." + did_you_mean(args.model, [
                n.name for n in project.nodes.values() if n.kind != "test"]))
        if node.kind == "model" and node.materialized == "ephemeral":
            raise Err(f"model {node.name} is ephemeral: it is inlined into the models that ref it and has no "
                      "table to show; preview a model that refs it, or make it a view")
        sql = f"select * from {node.relation}"
    else:
        from duckrec.tasks.compile import render_inline

        sql = render_inline(project, args.target or project.default_target, args.inline)  # Jinja: ref(), macros
    from duckrec.warehouse.readers import open_reader

    con = open_reader(project.warehouse_path(args.target))
    import duckdb

    try:
        sql = _one_query(con, sql)
        # the newline keeps a trailing `-- comment` in the user's query from eating the wrapper
        limited = f"select * from ({sql}\n) as q limit {args.limit}" if args.limit else sql
        if len(con.extract_statements(limited)) != 1:
            raise Err("show runs one query: the wrapper around it would run more than one statement")
        cur = con.execute(limited)
        cols = [d[0] for d in cur.description]
        rows = cur.fetchall()
    except duckdb.Error as e:
        raise Err(f"query failed: {e}") from None
    finally:
        con.close()
    _print_rows(cols, rows, args.format)
    return 0


def _one_query(con, sql: str) -> str:
    """The text of `sql` when it is exactly one read-only query, else a refusal that says why."""
    import duckdb

    from duckrec.core.errors import DuckrecError as Err
    from duckrec.execute.materialize import clean_sql

    sql = clean_sql(sql)
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as e:
        raise Err(f"query failed: {e}") from None
    if len(statements) != 1:
        raise Err(f"show runs one read-only query; found {len(statements)} statements. Run them one at a time.")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise Err(f"show is read-only: it runs a query (select, from, with, show, describe), found a "
                  f"{kind.name} statement. Write to the warehouse through a model and `duckrec build`.")
    return sql


def _print_rows(cols: list[str], rows: list[tuple], fmt: str) -> None:
    if fmt == "csv":
        import csv

        w = csv.writer(sys.stdout)
        w.writerow(cols)
        w.writerows(rows)
        return
    if fmt == "json":
        import json

        print(json.dumps([dict(zip(cols, r)) for r in rows], default=str, indent=1))
        return
    cells = [[_cell(v) for v in r] for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(cols)]
    print(" | ".join(c.ljust(w) for c, w in zip(cols, widths)))
    print("-+-".join("-" * w for w in widths))
    for r in cells:
        print(" | ".join(v.ljust(w) for v, w in zip(r, widths)))
    print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")


def _cell(v: Any) -> str:
    if v is None:
        return "NULL"
    text = str(v)
    return text if len(text) <= 60 else text[:57] + "..."
