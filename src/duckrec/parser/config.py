"""Config values: dbt's per-folder config tree, how configs merge, and the checks on a
model's or test's config (materialization, strategy, severity). Also --vars over vars."""
from __future__ import annotations

from typing import Any

from duckrec.core.errors import ProjectError, did_you_mean
from duckrec.core.nodes import CONFIG_KEYS, MATERIALIZATIONS, ON_SCHEMA_CHANGE, PROJECT_FILE, Node, Project
from duckrec.parser.yaml_file import line_of


def check_config_tree(tree: dict, where: str, raw: Any, project: Project) -> None:
    for key, value in tree.items():
        if key.startswith("+"):
            if key[1:] not in CONFIG_KEYS and project.config_file != PROJECT_FILE:
                project.warnings.append(f"{project.config_file}: {where}.{key} is not supported by duckrec (ignored)")
            elif key[1:] not in CONFIG_KEYS:
                raise ProjectError(
                    f"unknown config {where}.{key}; known: {sorted(CONFIG_KEYS)}" + did_you_mean(key[1:], CONFIG_KEYS),
                    path=PROJECT_FILE, line=line_of(raw),
                )
            if key == "+materialized" and value not in MATERIALIZATIONS:
                raise ProjectError(
                    f"{where}.+materialized is {value!r}; expected one of {list(MATERIALIZATIONS)}",
                    path=project.config_file, line=line_of(raw),
                )
        elif isinstance(value, dict):
            check_config_tree(value, f"{where}.{key}", raw.get(key) if isinstance(raw, dict) else None, project)


def folder_config(tree: dict, parts: list[str], project_name: str) -> dict[str, Any]:
    """dbt's nested per-folder config: deeper folders override, tags accumulate."""
    if project_name in tree and isinstance(tree[project_name], dict) and project_name not in parts[:1]:
        merged = folder_config({k: v for k, v in tree.items() if k != project_name}, parts, "\0")
        deeper = folder_config(tree[project_name], parts, "\0")
        return merge_config(merged, deeper)
    config: dict[str, Any] = {}
    level = tree
    for depth in range(len(parts) + 1):
        for key, value in level.items():
            name = key[1:] if key.startswith("+") else key
            if key.startswith("+") or (name in CONFIG_KEYS and not isinstance(value, dict)):
                config = merge_config(config, {name: value})
        if depth == len(parts):
            break
        nxt = level.get(parts[depth])
        if not isinstance(nxt, dict):
            break
        level = nxt
    return config


def merge_config(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if key == "tags":
            tags = [value] if isinstance(value, str) else list(value or [])
            out["tags"] = list(dict.fromkeys(list(out.get("tags") or []) + tags))
        elif key in ("column_types", "meta") and isinstance(value, dict):
            out[key] = {**(out.get(key) or {}), **value}
        else:
            out[key] = value
    return out


def check_model_config(node: Node) -> None:
    mat = node.config.get("materialized", "view")
    if mat not in MATERIALIZATIONS:
        raise ProjectError(f"model {node.name}: materialized={mat!r}; expected one of {list(MATERIALIZATIONS)}",
                           path=node.path)
    if node.language == "python" and mat not in ("table", "incremental"):
        raise ProjectError(f"Python model {node.name}: materialized={mat!r}; a Python model is a table or incremental",
                           path=node.path)
    strategy = node.config.get("incremental_strategy")
    if strategy is not None and strategy not in ("append", "delete+insert"):
        raise ProjectError(f"model {node.name}: incremental_strategy={strategy!r}; expected 'append' or "
                           "'delete+insert'", path=node.path)
    osc = node.config.get("on_schema_change", "fail")
    if osc not in ON_SCHEMA_CHANGE:
        raise ProjectError(f"model {node.name}: on_schema_change={osc!r}; expected one of {list(ON_SCHEMA_CHANGE)}",
                           path=node.path)


def check_severity(value: Any, rel: str, line: int | None) -> str:
    severity = str(value).lower()
    if severity not in ("warn", "error"):
        raise ProjectError(f"severity must be warn or error, found {value!r}", path=rel, line=line)
    return severity


def merge_vars(base: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """--vars over project.yml vars; nested mappings merge key by key, so
    `--vars '{lm: {epochs: 2}}'` keeps the other lm settings."""
    out = dict(base)
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_vars(out[key], value)
        else:
            out[key] = value
    return out
