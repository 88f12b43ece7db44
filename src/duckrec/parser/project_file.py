"""project.yml (or a dbt project's dbt_project.yml): the project's name, paths, targets,
vars and config trees, as a Project with no nodes yet."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from duckrec.core.errors import ProjectError, did_you_mean
from duckrec.core.nodes import DEFAULT_PATHS, PROJECT_FILE, Project
from duckrec.parser.config import check_config_tree, merge_vars
from duckrec.parser.yaml_file import line_of, strip_lines, load_yaml


def read_project_file(root: Path, cli_vars: dict[str, Any] | None) -> tuple[Project, dict[str, Any]]:
    """The project with its settings, and the extras a dbt project brings (empty for project.yml)."""
    cfg_path = root / PROJECT_FILE
    warnings: list[str] = []
    extras: dict[str, Any] = {}
    if cfg_path.exists():
        raw = load_yaml(cfg_path, PROJECT_FILE)
    elif (root / "dbt_project.yml").exists():
        from duckrec.parser import dbt_project  # a dbt project, read as it is

        raw, warnings, extras = dbt_project.read(root)
    else:
        raise ProjectError(f"no {PROJECT_FILE} (or dbt_project.yml) in {root}: run duckrec from a project folder "
                           "or pass --project-dir")
    if not isinstance(raw, dict):
        raise ProjectError("expected a mapping at the top level", path=PROJECT_FILE)
    if not raw.get("name"):
        raise ProjectError("missing 'name:' (the project's name)", path=PROJECT_FILE, line=1)

    paths = dict(DEFAULT_PATHS)
    for key, value in strip_lines(raw.get("paths") or {}).items():
        if key not in DEFAULT_PATHS:
            raise ProjectError(
                f"unknown key paths.{key}; expected one of {sorted(DEFAULT_PATHS)}" + did_you_mean(key, DEFAULT_PATHS),
                path=PROJECT_FILE, line=line_of(raw.get("paths")),
            )
        paths[key] = str(value)

    targets = strip_lines(raw.get("targets") or {"dev": {"warehouse": "warehouse.duckdb"}})
    default_target = str(raw.get("target") or next(iter(targets)))
    variables = strip_lines(raw.get("vars") or {})
    if not isinstance(variables, dict):
        raise ProjectError(f"vars: expected a mapping of names to values (e.g. `vars: {{k: 10}}`), found "
                           f"{variables!r}", path=PROJECT_FILE)
    vars_schema = raw.get("vars_schema")
    if vars_schema is not None and not isinstance(vars_schema, str):
        raise ProjectError(f"vars_schema: expected the path of a YAML file, found {vars_schema!r}", path=PROJECT_FILE)
    variables = merge_vars(variables, cli_vars)

    project = Project(
        root=root, name=str(raw["name"]), paths=paths, targets=targets,
        default_target=default_target, vars=variables, vars_schema=vars_schema,
        model_defaults=strip_lines(raw.get("models") or {}),
        seed_defaults=strip_lines(raw.get("seeds") or {}),
    )
    if extras:
        project.config_file, project.warnings = "dbt_project.yml", warnings
        project.clean_targets = extras["clean_targets"]
    check_config_tree(project.model_defaults, "models", raw.get("models"), project)
    check_config_tree(project.seed_defaults, "seeds", raw.get("seeds"), project)
    return project, extras
