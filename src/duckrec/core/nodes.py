"""The node records every part of the engine shares: seeds, models, data tests, sources
and the project that holds them, with the settings that name them. Nothing here reads files.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from duckrec.core.errors import ProjectError, did_you_mean

PROJECT_FILE = "project.yml"
DEFAULT_PATHS = {
    "sql": "sql",
    "python_models": "python_models",
    "models": "models",
    "seeds": "seeds",
    "macros": "sql/macros",
    "data_tests": "tests/data_tests",
    "target": "target",
    "reports": "reports",  # result pages of the docs site (duckrec docs generate)
}
MATERIALIZATIONS = ("view", "table", "incremental", "ephemeral")
ON_SCHEMA_CHANGE = ("fail", "append_new_columns", "sync_all_columns", "ignore")
# Config keys accepted with or without dbt's '+' prefix in project.yml.
CONFIG_KEYS = {
    "materialized", "schema", "tags", "enabled", "unique_key", "on_schema_change",
    "incremental_strategy", "severity", "file", "column_types", "delimiter", "quote",
    "description", "docs", "contract", "meta", "alias", "where", "grants", "persist_docs", "summary",
    "loaded_at_field", "freshness", "full_refresh",
    "optional",  # a seed whose file may be absent: it builds as an empty table (seed_checks.py)
}


@dataclass
class Column:
    name: str
    description: str = ""
    data_type: str | None = None
    not_null: bool = False  # a not_null test (severity error, no where) or constraint: NOT NULL in tables


@dataclass
class Node:
    """A seed, a model (SQL or Python) or a data test."""

    unique_id: str          # "seed.ratings", "model.events", "test.not_null_events_user_id"
    kind: str               # seed | model | test
    name: str
    path: str               # relative to the project root
    language: str = "sql"   # sql | python | csv
    raw_code: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    refs: list[str] = field(default_factory=list)           # model/seed names
    sources: list[tuple[str, str]] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)     # unique_ids, filled by graph
    description: str = ""
    columns: dict[str, Column] = field(default_factory=dict)
    fqn: list[str] = field(default_factory=list)
    # tests only
    test: dict[str, Any] | None = None
    attached_to: str | None = None                          # unique_id of the tested node
    inline_config: dict[str, Any] = field(default_factory=dict)  # config() in the file itself

    @property
    def schema(self) -> str:
        return self.config.get("schema") or "main"

    @property
    def relation(self) -> str:
        return f'"{self.schema}"."{self.config.get("alias") or self.name}"'

    @property
    def materialized(self) -> str:
        return self.config.get("materialized", "view")

    @property
    def tags(self) -> list[str]:
        return list(self.config.get("tags") or [])


@dataclass
class Source:
    source_name: str
    name: str
    schema: str
    identifier: str
    path: str
    description: str = ""
    loaded_at_field: str | None = None
    freshness: dict[str, Any] | None = None

    @property
    def relation(self) -> str:
        return f'"{self.schema}"."{self.identifier}"'


@dataclass
class Project:
    root: Path
    name: str
    paths: dict[str, str]
    targets: dict[str, dict[str, Any]]
    default_target: str
    vars: dict[str, Any]
    model_defaults: dict[str, Any]
    seed_defaults: dict[str, Any]
    nodes: dict[str, Node] = field(default_factory=dict)
    sources: dict[tuple[str, str], Source] = field(default_factory=dict)
    macro_files: list[str] = field(default_factory=list)
    config_file: str = PROJECT_FILE         # or dbt_project.yml for a dbt project
    warnings: list[str] = field(default_factory=list)  # settings read but not supported
    clean_targets: list[str] = field(default_factory=list)
    doc_blocks: dict[str, tuple[str, str]] = field(default_factory=dict)  # {% docs name %}: (file, text)
    vars_schema: str | None = None                          # project.yml `vars_schema:`, relative path

    def path(self, key: str) -> Path:
        return self.root / self.paths[key]

    def warehouse_path(self, target: str | None) -> Path:
        name = target or self.default_target
        if name not in self.targets:
            raise ProjectError(
                f"unknown target {name!r}; {'project.yml' if self.config_file == PROJECT_FILE else 'profiles.yml'} "
                f"defines {sorted(self.targets)}." + did_you_mean(name, self.targets),
                path=self.config_file if self.config_file == PROJECT_FILE else "profiles.yml",
            )
        env = os.environ.get("DUCKREC_WAREHOUSE")
        raw = env or str(self.targets[name].get("warehouse") or "warehouse.duckdb")
        raw = render_env(raw)
        p = Path(raw).expanduser()
        return p if p.is_absolute() else self.root / p

    def by_name(self, name: str) -> Node | None:
        for kind in ("model", "seed"):
            node = self.nodes.get(f"{kind}.{name}")
            if node is not None:
                return node
        return None


_ENV_RE = re.compile(r"""\{\{\s*env_var\(\s*['"]([^'"]+)['"]\s*(?:,\s*['"]([^'"]*)['"]\s*)?\)\s*\}\}""")


def render_env(text: str) -> str:
    def sub(m: re.Match) -> str:
        value = os.environ.get(m.group(1), m.group(2))
        if value is None:
            raise ProjectError(f"env_var({m.group(1)!r}) is not set and has no default", path=PROJECT_FILE)
        return value

    return _ENV_RE.sub(sub, text)
