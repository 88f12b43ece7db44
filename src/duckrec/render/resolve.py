"""The one place that resolves ref(), source() and var() for a node, whatever calls them:
Jinja in SQL models, macros and singular tests, `dbt.ref()` in Python models, and the `to:`
argument of a relationships test.

While a project is parsed a resolver records what it is asked for (the node's dependencies);
at run time it refuses a ref() to a node that is not among the node's dependencies, so a
model never runs before, or reads a stale copy of, what it reads.
"""
from __future__ import annotations

import ast
from typing import Any

from duckrec.core.errors import NodeError, ProjectError, did_you_mean
from duckrec.core.nodes import Node, Project, Source

MISSING = object()


class Resolver:
    def __init__(self, project: Project, node: Node, *, record: bool = False, allowed: set[str] | None = None):
        """`record`: parse mode (remember every ref/source, check nothing against the DAG).
        `allowed`: unique_ids a ref() may name at run time (default: the node's depends_on;
        None when the node is not part of the DAG, e.g. an inline query)."""
        self.project = project
        self.node = node
        self.record = record
        self.refs: list[str] = []
        self.sources: list[tuple[str, str]] = []
        self.allowed = allowed

    def ref(self, *args: str, **kwargs: Any) -> Node:
        """dbt's ref('name'), ref('package', 'name'), ref('name', version=1)."""
        if not args or len(args) > 2 or not all(isinstance(a, str) for a in args):
            raise ProjectError(f"ref() takes a model name, or a package and a model name; found ref{args!r}",
                               path=self.node.path)
        if len(args) == 2 and args[0] != self.project.name:
            # dbt packages are not installed by duckrec: only this project's own name is accepted
            raise ProjectError(f"ref({args[0]!r}, {args[1]!r}): {args[0]!r} is not this project "
                               f"({self.project.name!r}); duckrec has no packages", path=self.node.path)
        name = args[-1]
        target = self.project.by_name(name)
        if target is None:
            raise ProjectError(f"ref({name!r}) is not a model or seed."
                               + did_you_mean(name, [n.name for n in self.project.nodes.values() if n.kind != "test"]),
                               path=self.node.path)
        if self.record:
            self.refs.append(name)
        elif self.allowed is not None and target.unique_id not in self.allowed:
            raise NodeError(
                f"{self.node.name} calls ref({name!r}) while it runs, but {name} is not among the dependencies "
                f"of {self.node.name} found when the project was parsed (a ref() inside a branch that parsing did "
                f"not take, such as {{% if is_incremental() %}}), so {name} may not be built yet. "
                f"{self.node.name} was not run. Add `-- depends_on: {{{{ ref('{name}') }}}}` to {self.node.path}",
                path=self.node.path)
        return target

    def source(self, source_name: str, table: str) -> Source:
        src = self.project.sources.get((source_name, table))
        if src is None:
            known = [f"{a}.{b}" for a, b in self.project.sources]
            raise ProjectError(f"source({source_name!r}, {table!r}) is not declared in a properties file."
                               + did_you_mean(f"{source_name}.{table}", known), path=self.node.path)
        if self.record:
            self.sources.append((source_name, table))
        return src

    def var(self, name: str, default: Any = MISSING) -> Any:
        if name in self.project.vars:
            return self.project.vars[name]
        if default is MISSING:
            raise ProjectError(f"var({name!r}) is not set in the project's vars or --vars, and has no default"
                               + did_you_mean(name, self.project.vars), path=self.node.path)
        return default


def runtime(project: Project, node: Node) -> Resolver:
    """The resolver a node uses while it runs: refs limited to its dependencies (and itself)."""
    if node.unique_id not in project.nodes:
        return Resolver(project, node)
    return Resolver(project, node, allowed=set(node.depends_on) | {node.unique_id})


def relation_call(text: str) -> tuple[str, tuple[str, ...]] | None:
    """`ref('a')`, `ref('pkg', 'a')` or `source('s', 't')` (as written in YAML) as (function, args)."""
    text = str(text).strip()
    if text.startswith("{{") and text.endswith("}}"):
        text = text[2:-2].strip()
    try:
        call = ast.parse(text, mode="eval").body
    except SyntaxError:
        return None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in ("ref", "source")):
        return None
    try:
        args = tuple(ast.literal_eval(a) for a in call.args)
    except ValueError:
        return None
    if not all(isinstance(a, str) for a in args):
        return None
    return call.func.id, args
