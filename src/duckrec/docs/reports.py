"""Result pages the project declares: `reports/*.yml`, one page per file.

The engine draws what a page asks for and knows nothing of what it means:

    title: Strategies side by side
    description: Markdown-free text shown under the title.
    charts:
      - title: NDCG@10 against coverage@10
        kind: scatter                 # bar, barh, line or scatter
        sql: select strategy, ndcg, coverage from {{ ref('metrics') }} where k = 10
        x: coverage
        y: ndcg                       # or a list: one series per column
        series: strategy              # optional: one series per value of a column
        label: strategy               # scatter/line: annotate each point
        join: rows                    # line: join points in the query's order (default x: in x order)
        x_label: coverage@10 (share of catalogue items)
        y_label: NDCG@10
        y_format: percent             # optional, also x_format
    tables:
      - title: The figures
        sql: select * from {{ ref('metrics') }}

`sql` is rendered like a model (ref, source, var, macros). A chart whose ref names a model
the project does not have, or whose relation the warehouse does not hold yet, is shown as a
note saying so, not as an error.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from duckrec.core.errors import DuckrecError, ProjectError
from duckrec.core.nodes import Node, Project
from duckrec.parser.yaml_file import load_yaml
from duckrec.parser.dependencies import sql_dependencies
from duckrec.docs.charts import KINDS, ChartSpec

CHART_KEYS = {"title", "kind", "sql", "x", "y", "series", "label", "x_label", "y_label", "x_format", "y_format",
              "description", "join", "x_low", "x_high", "y_low", "y_high"}
PAGE_KEYS = {"title", "description", "charts", "tables", "order"}


@dataclass
class Block:
    """A chart or a table of a page, with what its query needs."""

    kind: str                      # "chart" or "table"
    title: str
    sql: str
    line: int | None
    chart: ChartSpec | None = None
    description: str = ""
    refs: list[str] = field(default_factory=list)


@dataclass
class Page:
    slug: str
    path: str
    title: str
    description: str
    order: float
    blocks: list[Block]


def reports_dir(project: Project) -> Path:
    return project.root / project.paths.get("reports", "reports")


def load_pages(project: Project) -> list[Page]:
    base = reports_dir(project)
    if not base.is_dir():
        return []
    pages = [_page(project, p) for p in sorted(list(base.glob("*.yml")) + list(base.glob("*.yaml")))]
    return sorted(pages, key=lambda p: (p.order, p.slug))


def _page(project: Project, path: Path) -> Page:
    rel = str(path.relative_to(project.root))
    doc = load_yaml(path, rel)
    if not isinstance(doc, dict) or not doc.get("title"):
        raise ProjectError("a report page is a mapping with at least a title:", path=rel, line=1)
    _known(doc, PAGE_KEYS, "page", rel)
    blocks = []
    for kind, key in (("chart", "charts"), ("table", "tables")):
        entries = doc.get(key) or []
        if not isinstance(entries, list):
            raise ProjectError(f"{key}: expected a list", path=rel, line=doc.get("__line__"))
        for entry in entries:
            blocks.append(_block(kind, entry, rel))
    slug = re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-")
    return Page(slug, rel, str(doc["title"]), str(doc.get("description") or ""), float(doc.get("order") or 0), blocks)


def _known(entry: dict, keys: set[str], what: str, rel: str) -> None:
    from duckrec.core.errors import did_you_mean

    for key in entry:
        if key != "__line__" and key not in keys:
            raise ProjectError(f"unknown {what} key {key!r}; expected some of {sorted(keys)}" + did_you_mean(key, keys),
                               path=rel, line=entry.get("__line__"))


def _block(kind: str, entry: Any, rel: str) -> Block:
    if not isinstance(entry, dict):
        raise ProjectError(f"each {kind} is a mapping with title: and sql:", path=rel)
    line = entry.get("__line__")
    _known(entry, CHART_KEYS if kind == "chart" else {"title", "sql", "description"}, kind, rel)
    for key in ("title", "sql") + (("kind", "x", "y") if kind == "chart" else ()):
        if not entry.get(key):
            raise ProjectError(f"{kind} {entry.get('title', '')!r}: missing {key}:", path=rel, line=line)
    refs, _, _ = sql_dependencies(str(entry["sql"]), rel)
    block = Block(kind, str(entry["title"]), str(entry["sql"]), line, description=str(entry.get("description") or ""),
                  refs=refs)
    if kind == "chart":
        if entry["kind"] not in KINDS:
            raise ProjectError(f"chart {entry['title']!r}: kind {entry['kind']!r}; expected one of {list(KINDS)}",
                               path=rel, line=line)
        y = entry["y"] if isinstance(entry["y"], list) else [entry["y"]]
        for key in ("x_format", "y_format"):
            if entry.get(key) not in (None, "percent"):
                raise ProjectError(f"chart {entry['title']!r}: {key} {entry[key]!r}; expected percent or nothing",
                                   path=rel, line=line)
        if entry.get("join") not in (None, "x", "rows"):
            raise ProjectError(f"chart {entry['title']!r}: join {entry['join']!r}; expected x (the default: points "
                               "joined in x order) or rows (in the query's order)", path=rel, line=line)
        bounds = {key: entry.get(key) for key in ("x_low", "x_high", "y_low", "y_high")}
        for axis in ("x", "y"):
            if (bounds[f"{axis}_low"] is None) != (bounds[f"{axis}_high"] is None):
                raise ProjectError(f"chart {entry['title']!r}: {axis}_low and {axis}_high go together (an "
                                   "interval's two ends); found only one", path=rel, line=line)
        if any(bounds.values()) and (entry["kind"] not in ("scatter", "line") or len(y) > 1):
            raise ProjectError(f"chart {entry['title']!r}: intervals (x_low/x_high, y_low/y_high) are drawn on "
                               f"scatter and line charts of one y column; found kind {entry['kind']!r} with y {y}",
                               path=rel, line=line)
        block.chart = ChartSpec(
            title=block.title, kind=entry["kind"], x=str(entry["x"]), y=[str(v) for v in y],
            series=entry.get("series"), label=entry.get("label"), x_label=str(entry.get("x_label") or entry["x"]),
            y_label=str(entry.get("y_label") or ", ".join(y)), x_format=entry.get("x_format"),
            y_format=entry.get("y_format"), description=block.description, join=entry.get("join") or "x",
            intervals={key: str(value) for key, value in bounds.items() if value is not None})
    return block


def missing_inputs(project: Project, block: Block, relations: set[tuple[str, str]]) -> str | None:
    """Why a block cannot be drawn yet (a model the project lacks, a relation not built), or None."""
    for name in block.refs:
        node = project.by_name(name)
        if node is None:
            return f"shown once the project has a model {name!r} (it has none yet)"
        key = (node.schema, node.config.get("alias") or node.name)
        if node.kind != "test" and node.materialized != "ephemeral" and key not in relations:
            return f"shown once {node.schema}.{node.name} is built (run duckrec build)"
    return None


def compile_sql(project: Project, renderer, page: Page, block: Block, text: str | None = None) -> str:
    """The block's SQL (or `text`, e.g. its title) rendered like a model: ref, var, macros."""
    node = Node(unique_id=f"report.{page.slug}", kind="report", name=page.slug, path=page.path,
                raw_code=block.sql if text is None else text, config={})
    try:
        return renderer.compile(node)
    except DuckrecError as e:
        raise ProjectError(f"{block.kind} {block.title!r}: {str(e).split(': ', 1)[-1]}", path=page.path,
                           line=block.line) from None
