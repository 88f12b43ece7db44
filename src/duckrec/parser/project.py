"""Read project.yml, the YAML properties and the model files into plain node records.

Everything downstream (graph, render, runner) shares these records; nothing here touches
the warehouse or imports the Python models. The records are in duckrec.core.nodes, each step of
reading them in a module of duckrec.parser; this module puts the steps in order.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from duckrec.core.nodes import Project
from duckrec.parser.cache import cached_parse
from duckrec.parser.dependencies import rendered_dependencies
from duckrec.parser.docs import read_docs
from duckrec.parser.files import discover_macros, discover_models, discover_seeds, discover_singular_tests
from duckrec.parser.project_file import read_project_file
from duckrec.parser.properties import read_properties


def load_project(root: str | Path = ".", cli_vars: dict[str, Any] | None = None) -> Project:
    """The parsed project, its vars (with --vars) checked against the project's vars schema."""
    project = _load_project(root, cli_vars)
    if project.vars_schema:
        from duckrec.parser.varschema import check_vars, load_schema

        check_vars(project.vars, load_schema(project.root, project.vars_schema), project.vars_schema)
    return project


def _load_project(root: str | Path = ".", cli_vars: dict[str, Any] | None = None) -> Project:
    """The parsed project; reuses target/partial_parse.pickle while no project file changed."""
    return cached_parse(root, cli_vars, _parse_project)


def _parse_project(root: Path, cli_vars: dict[str, Any] | None) -> Project:
    project, extras = read_project_file(root, cli_vars)
    discover_seeds(project)
    discover_models(project)
    read_properties(project)
    discover_singular_tests(project)
    discover_macros(project)
    read_docs(project)
    rendered_dependencies(project)
    if extras:
        from duckrec.parser import dbt_project

        dbt_project.schema_names(project, extras["target_schema"])
    return project
