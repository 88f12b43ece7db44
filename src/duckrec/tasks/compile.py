"""`duckrec compile`: every selected SQL model and test rendered to target/compiled, and Jinja in
`--inline` SQL (compile, show)."""
from __future__ import annotations

from collections.abc import Callable

from duckrec.core.nodes import Node, Project

from duckrec.artifacts import target as artifacts
from duckrec.execute.runner import Options, Runner
from duckrec.render.test_sql import generic_sql


def inline_node(project: Project, sql: str) -> Node:
    """An ad-hoc query as a node outside the DAG: its refs resolve, and are not checked against
    dependencies it does not have."""
    return Node(unique_id="sql_operation.inline", kind="model", name="inline", path="<inline>", raw_code=sql,
                config={"materialized": "ephemeral"})


def render_inline(project: Project, target: str, sql: str) -> str:
    from duckrec.render.renderer import Renderer

    return Renderer(project, target).compile(inline_node(project, sql)).strip().rstrip(";")


def compile_all(project: Project, options: Options, out: Callable[[str], None]) -> int:
    """Render every selected SQL model/test to target/compiled without touching the warehouse."""
    runner = Runner(project, options)
    plan = runner.plan()
    for uid in plan:
        node = project.nodes[uid]
        if node.kind == "seed" or node.language == "python":
            continue
        sql = generic_sql(project, node) if node.kind == "test" and node.test["type"] != "singular" \
            else runner.renderer.compile(node)
        path = artifacts.write_compiled(project, node, sql)
        out(str(path.relative_to(project.root)))
    artifacts.write_manifest(project, runner.target)
    return 0
