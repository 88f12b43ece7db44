"""`duckrec docs generate`: a static site under target/docs/ from the project, its compiled
SQL and the warehouse (read-only): lineage, one page per node, the run history, and the
result pages the project declares in reports/*.yml.

Every page is plain HTML with its SVG inline; the one stylesheet and the one script are
copied from this package beside index.html, so the site works from file:// offline.
"""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from duckrec.artifacts import target as artifacts
from duckrec import graph
from duckrec.core.errors import DuckrecError
from duckrec.core.nodes import Node, Project
from duckrec.docs import charts, lineage, reports

HERE = Path(__file__).parent
RUNS_SHOWN = 50


@dataclass
class Warehouse:
    """What the site reads from the warehouse; empty when there is none yet."""

    path: Path
    exists: bool = False
    relations: set[tuple[str, str]] = field(default_factory=set)
    columns: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    comments: dict[tuple[str, str], str] = field(default_factory=dict)
    last_run: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    con: Any = None


def _read_warehouse(path: Path) -> Warehouse:
    wh = Warehouse(path)
    if not path.exists():
        return wh
    from duckrec.warehouse.readers import connect_read_only

    con = connect_read_only(path)
    wh.exists, wh.con = True, con
    for schema, name, comment in con.execute(
            "select schema_name, table_name, comment from duckdb_tables() where database_name = current_database() "
            "union all select schema_name, view_name, comment from duckdb_views() "
            "where database_name = current_database() and not internal").fetchall():
        wh.relations.add((schema, name))
        if comment:
            wh.comments[(schema, name)] = comment
    for schema, table, column, data_type, nullable, comment in con.execute(
            "select schema_name, table_name, column_name, data_type, is_nullable, comment from duckdb_columns() "
            "where database_name = current_database() order by schema_name, table_name, column_index").fetchall():
        wh.columns.setdefault((schema, table), []).append(
            {"name": column, "type": data_type, "nullable": nullable, "comment": comment})
    if ("_duckrec", "node_runs") in wh.relations:
        cur = con.execute("select * from _duckrec.node_runs qualify row_number() over "
                          "(partition by unique_id order by finished_at desc) = 1")
        cols = [d[0] for d in cur.description]
        wh.last_run = {r["unique_id"]: r for r in (dict(zip(cols, row)) for row in cur.fetchall())}
    if ("_duckrec", "runs") in wh.relations:
        cur = con.execute(f"select * from _duckrec.runs order by started_at desc limit {RUNS_SHOWN}")
        cols = [d[0] for d in cur.description]
        wh.runs = [dict(zip(cols, row)) for row in cur.fetchall()]
    return wh


def page_name(uid: str) -> str:
    return "nodes/" + re.sub(r"[^A-Za-z0-9_.-]+", "_", uid) + ".html"


def _env():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["seconds"] = lambda v: "" if v is None else (f"{v:.2f} s" if v < 60 else f"{v / 60:.1f} min")
    env.filters["number"] = _number
    env.filters["when"] = lambda v: "" if v is None else (v.strftime("%Y-%m-%d %H:%M:%S") if isinstance(
        v, datetime) else str(v))
    return env


def _number(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 1000 else f"{value:,.1f}"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def generate(project: Project, target: str | None = None, out: Callable[[str], None] = print) -> tuple[Path, list[str]]:
    """Write target/docs/; returns its index.html and the problems met (one line each)."""
    from duckrec.render.renderer import Renderer

    target = target or project.default_target
    graph.link(project)
    artifacts.write_manifest(project, target)
    docs = project.path("target") / "docs"
    if docs.exists():
        shutil.rmtree(docs)
    (docs / "nodes").mkdir(parents=True)
    (docs / "results").mkdir()
    for name in ("site.css", "site.js"):
        shutil.copyfile(HERE / "static" / name, docs / name)
    wh = _read_warehouse(project.warehouse_path(target))
    problems: list[str] = []
    try:
        env = _env()
        pages = reports.load_pages(project)
        nav = {"project": project.name, "target": target, "pages": pages,
               "generated_at": datetime.now().strftime("%Y-%m-%d %H:%M"), "built": wh.exists}
        nodes = project.nodes
        links = {uid: page_name(uid) for uid in nodes}
        children = graph.children_map(nodes)
        tests_of: dict[str, list[Node]] = {}
        for n in nodes.values():
            if n.kind == "test":
                for uid in [n.attached_to] if n.attached_to else [d for d in n.depends_on if d in nodes]:
                    tests_of.setdefault(uid, []).append(n)
        info = {uid: {"name": n.name, "kind": n.kind, "relation": None if n.kind == "test" else
                      f"{n.schema}.{n.name}", "description": n.description, "materialized": n.materialized
                      if n.kind == "model" else n.kind, "href": links[uid],
                      "status": (wh.last_run.get(uid) or {}).get("status")} for uid, n in nodes.items()}
        _write(docs / "index.html", env.get_template("index.html").render(
            nav=nav, root="", lineage=lineage.svg(nodes, links), node_json=json.dumps(info),
            counts={k: sum(n.kind == k for n in nodes.values()) for k in ("seed", "model", "test")}))
        for uid, node in nodes.items():
            _write(docs / links[uid], env.get_template("node.html").render(
                nav=nav, root="../", **_node_context(project, node, wh, tests_of, children, links)))
        _write(docs / "runs.html", env.get_template("runs.html").render(
            nav=nav, root="", runs=wh.runs, chart=_runs_chart(wh.runs, problems),
            slowest=_slowest(wh, nodes, links)))
        renderer = Renderer(project, target)
        for page in pages:
            blocks = [_render_block(project, renderer, page, b, wh, problems) for b in page.blocks]
            _write(docs / "results" / f"{page.slug}.html", env.get_template("result.html").render(
                nav=nav, root="../", page=page, blocks=blocks))
    finally:
        if wh.con is not None:
            wh.con.close()
    out(f"wrote {docs.relative_to(project.root) if docs.is_relative_to(project.root) else docs}/index.html: "
        f"{len(project.nodes)} nodes, {len(pages)} result pages" + ("" if wh.exists else " (no warehouse yet)"))
    return docs / "index.html", problems


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _node_context(project: Project, node: Node, wh: Warehouse, tests_of: dict[str, list[Node]],
                  children: dict[str, list[str]], links: dict[str, str]) -> dict[str, Any]:
    key = (node.schema, node.config.get("alias") or node.name)
    found = {c["name"]: c for c in wh.columns.get(key, [])}
    column_tests: dict[str | None, list[str]] = {}
    for t in tests_of.get(node.unique_id, []):
        test = t.test or {}
        label = test.get("type", "singular")
        if test.get("type") == "accepted_values":
            label += " " + ", ".join(map(str, test.get("kwargs", {}).get("values", [])))[:60]
        elif test.get("type") == "relationships":
            label += f" → {test.get('kwargs', {}).get('to')}.{test.get('kwargs', {}).get('field')}"
        if t.config.get("severity") == "warn":
            label += " (warn)"
        column_tests.setdefault(test.get("column") if t.attached_to == node.unique_id else None, []).append(
            (label, links[t.unique_id]))
    columns = []
    for name in list(node.columns) + [c for c in found if c not in node.columns]:
        declared = node.columns.get(name)
        columns.append({"name": name, "type": (found.get(name) or {}).get("type") or (declared.data_type if declared
                                                                                        else None) or "",
                        "description": declared.description if declared else "",
                        "not_null": (found.get(name) or {}).get("nullable") is False,
                        "tests": column_tests.get(name, []), "built": name in found})
    code_kind, code = "SQL", None
    if node.kind in ("model", "test") and node.language != "python":
        path = artifacts.compiled_path(project, node)
        code = path.read_text(encoding="utf-8") if path.exists() else None
        code_kind = "compiled SQL" if code is not None else "SQL (not compiled yet: run duckrec build or compile)"
        code = code if code is not None else node.raw_code
    elif node.language == "python":
        code_kind, code = "Python", node.raw_code
    return {
        "node": node, "page_links": links, "columns": columns, "code_kind": code_kind, "code": code,
        "run": wh.last_run.get(node.unique_id), "built": key in wh.relations,
        "upstream": [u for u in node.depends_on if u in links],
        "downstream": sorted(c for c in children.get(node.unique_id, []) if c in links),
        "model_tests": column_tests.get(None, []), "comment": wh.comments.get(key),
    }


def _runs_chart(runs: list[dict[str, Any]], problems: list[str]) -> str | None:
    builds = [r for r in reversed(runs) if r.get("seconds") is not None]
    if len(builds) < 1:
        return None
    rows = [(i + 1, r["seconds"], r["status"]) for i, r in enumerate(builds)]
    title = "Duration of the last run" if len(rows) == 1 else f"Duration of the last {len(rows)} runs"
    spec = charts.ChartSpec(title=title, kind="bar", x="run", y=["seconds"],
                            series="status", x_label="run (oldest first)", y_label="duration (seconds)")
    try:
        return charts.render(spec, ["run", "seconds", "status"], rows)
    except Exception as e:  # noqa: BLE001 - a chart problem must not lose the page
        problems.append(f"runs chart: {e}")
        return None


def _slowest(wh: Warehouse, nodes: dict[str, Node], links: dict[str, str]) -> list[dict[str, Any]]:
    rows = [r for r in wh.last_run.values() if r.get("seconds") is not None]
    rows.sort(key=lambda r: -r["seconds"])
    return [{**r, "href": links.get(r["unique_id"])} for r in rows[:15]]


def _render_block(project: Project, renderer, page: reports.Page, block: reports.Block, wh: Warehouse,
                  problems: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"block": block, "title": block.title, "svg": None, "note": None, "error": None, "columns": [], "rows": []}
    reason = reports.missing_inputs(project, block, wh.relations) if wh.exists else \
        "shown once the warehouse exists (run duckrec build)"
    if reason:
        out["note"] = reason
        return out
    import duckdb

    try:
        if "{" in block.title:
            out["title"] = reports.compile_sql(project, renderer, page, block, block.title)
            if block.chart:
                block.chart.title = out["title"]
        sql = reports.compile_sql(project, renderer, page, block)
        cur = wh.con.execute(sql)
        columns = [d[0] for d in cur.description]
        rows = cur.fetchall()
        if block.kind == "chart":
            if not rows:
                out["note"] = "the query returned no rows"
            else:
                out["svg"] = charts.render(block.chart, columns, rows)
        else:
            out["columns"], out["rows"] = columns, rows
    except (DuckrecError, duckdb.Error, ValueError) as e:
        where = f"{page.path}" + (f", line {block.line}" if block.line else "")
        message = f"{where}: {block.kind} {block.title!r}: {e}"
        problems.append(message)
        out["error"] = message
    return out
