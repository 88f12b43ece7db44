"""Whether each seed's file is there and readable, before any work; optional seeds.

A seed is optional when project.yml says so (`+optional: true`, e.g. links of a dataset
that has none). An optional seed whose file is absent builds as an empty table with the
columns it declares (`+column_types`, or its YAML columns' `data_type`), with a warning:
the models that read it see no rows instead of the build failing. A required seed whose
file is absent or unreadable stops a build before anything runs, naming the seed and the
file, instead of failing once the nodes before it have spent their time.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from duckrec.core.errors import NodeError
from duckrec.core.nodes import Node, Project
from duckrec.warehouse.relation_docs import persist_docs
from duckrec.core.sql import quote_identifier


@dataclass
class SeedFileCheck:
    seed: str
    path: str                                   # as configured: relative to the project, or absolute
    optional: bool
    files: list[Path] = field(default_factory=list)
    problem: str | None = None                  # why the build cannot read it; None when it can

    @property
    def absent(self) -> bool:
        return not self.files


def is_optional(node: Node) -> bool:
    return node.config.get("optional") is True


def check_seed(project: Project, node: Node) -> SeedFileCheck:
    """The seed's files, and what is wrong with them (absent and required, or unreadable)."""
    from duckrec.execute.seed_globs import is_glob
    from duckrec.parser.files import seed_paths

    check = SeedFileCheck(node.name, node.path, is_optional(node), seed_paths(project, node))
    if check.absent and not check.optional:
        found = "no file matches it" if is_glob(node.path) else "the file does not exist"
        check.problem = (f"seed {node.name}: expected its file at {node.path!r} (seeds.{node.name}.+file in "
                         f"{project.config_file}), found none: {found}. Add the file, point +file at it, or "
                         f"declare the seed +optional: true to build it as an empty table.")
    for path in check.files:
        try:
            with open(path, "rb") as f:
                f.read(1)
        except OSError as e:
            check.problem = f"seed {node.name}: cannot read {path}: {e.strerror or e}"
            break
    return check


def check_seeds(project: Project, uids: list[str]) -> list[SeedFileCheck]:
    return [check_seed(project, project.nodes[u]) for u in uids if project.nodes[u].kind == "seed"]


def declared_columns(node: Node) -> list[tuple[str, str]]:
    """(name, type) of the columns an absent optional seed's empty table gets."""
    typed = [(str(k).strip(), str(v)) for k, v in (node.config.get("column_types") or {}).items()]
    if typed:
        return typed
    return [(c.name, c.data_type) for c in node.columns.values() if c.data_type]


def load_absent_seed(con, project: Project, node: Node) -> str:
    """The empty table of an optional seed whose file is absent; returns the warning."""
    columns = declared_columns(node)
    if not columns:
        raise NodeError(f"seed {node.name} is optional and its file {node.path!r} is absent, so it builds as an "
                        f"empty table, but it declares no columns for that table: add seeds.{node.name}."
                        f"+column_types in {project.config_file} (or data_type on its YAML columns)",
                        path=project.config_file)
    ddl = ", ".join(f"{quote_identifier(name)} {kind}" for name, kind in columns)
    con.execute(f'create schema if not exists "{node.schema}"')
    con.execute(f"create or replace table {node.relation} ({ddl})")
    persist_docs(con, node, "table")
    return (f"seed {node.name}: {node.path} is absent; the seed is optional, so {node.relation} is an empty "
            f"table with its declared columns ({', '.join(n for n, _ in columns)})")
