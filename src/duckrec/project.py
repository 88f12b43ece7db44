"""Read project.yml, the YAML properties and the model files into plain node records.

Everything downstream (graph, render, runner) shares these records; nothing here touches
the warehouse or imports the Python models. The records are in duckrec.nodes, each step of
reading them in duckrec.parser; this module puts the steps in order and keeps the names
the rest of the engine imports.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .nodes import (  # noqa: F401 - the names the engine and tests import from here
    CONFIG_KEYS, DEFAULT_PATHS, MATERIALIZATIONS, ON_SCHEMA_CHANGE, PROJECT_FILE, Column, Node, Project, Source,
)
from .parser.cache import CACHE_FILE, cached_parse  # noqa: F401
from .parser.config import folder_config, merge_vars  # noqa: F401
from .parser.dependencies import python_dependencies, rendered_dependencies, sql_dependencies  # noqa: F401
from .parser.docs import read_docs
from .parser.files import discover_macros, discover_models, discover_seeds, discover_singular_tests
from .parser.project_file import read_project_file
from .parser.properties import GENERIC_TESTS, TEST_CONFIG_ARGS, dbt_test_alias, dbt_test_name  # noqa: F401
from .parser.properties import read_properties
from .parser.yaml_file import load_yaml, strip_lines  # noqa: F401

_strip_lines = strip_lines  # the name dbt_project and varschema import


def load_project(root: str | Path = ".", cli_vars: dict[str, Any] | None = None) -> Project:
    """The parsed project, its vars (with --vars) checked against the project's vars schema."""
    project = _load_project(root, cli_vars)
    if project.vars_schema:
        from .varschema import check_vars, load_schema

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
        from . import dbt_project

        dbt_project.schema_names(project, extras["target_schema"])
    return project
