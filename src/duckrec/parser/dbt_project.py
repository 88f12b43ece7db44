"""Read a dbt-duckdb project as it is: dbt_project.yml and profiles.yml, translated into the
settings project.yml would hold. Keys duckrec does not support are listed as warnings, once."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from duckrec.core.errors import ProjectError
from duckrec.parser.yaml_file import load_yaml, strip_lines

DBT_PROJECT_FILE = "dbt_project.yml"
PROFILES_FILE = "profiles.yml"
# dbt_project.yml keys read here; the others are warned about.
_PATH_KEYS = {"model-paths": ("sql", "python_models", "models"), "seed-paths": ("seeds",),
              "macro-paths": ("macros",), "test-paths": ("data_tests",)}
_ACCEPTED = {"name", "version", "config-version", "profile", "require-dbt-version", "vars", "models", "seeds",
             "target-path", "clean-targets", "analysis-paths", "data_tests", "tests", "docs-paths"}
_OUTPUT_KEYS = {"type", "path", "threads", "extensions", "settings", "schema", "database"}


def read(root: Path) -> tuple[dict[str, Any], list[str], dict[str, Any]]:
    """(project.yml-shaped settings, warnings, extras) for the dbt project at `root`."""
    raw = load_yaml(root / DBT_PROJECT_FILE, DBT_PROJECT_FILE)
    if not isinstance(raw, dict) or not raw.get("name"):
        raise ProjectError("expected a mapping with `name:`", path=DBT_PROJECT_FILE, line=1)
    warnings: list[str] = []
    name = str(raw["name"])
    paths: dict[str, str] = {}
    for key, targets in _PATH_KEYS.items():
        value = raw.get(key)
        if value is None:
            continue
        values = [str(v) for v in (value if isinstance(value, list) else [value])]
        if len(values) > 1:
            warnings.append(f"{DBT_PROJECT_FILE}: {key} lists {values}; duckrec reads only {values[0]!r}")
        for t in targets:
            paths[t] = values[0] if values else t
    paths.setdefault("sql", "models")
    paths.setdefault("python_models", paths["sql"])
    paths.setdefault("models", paths["sql"])
    paths.setdefault("seeds", "seeds")
    paths.setdefault("macros", "macros")
    paths.setdefault("data_tests", "tests")
    paths["target"] = str(raw.get("target-path") or "target")
    if raw.get("analysis-paths"):
        analyses = [p for p in _list(raw["analysis-paths"]) if (root / p).is_dir() and any((root / p).iterdir())]
        if analyses:
            warnings.append(f"{DBT_PROJECT_FILE}: analysis-paths {analyses} are not compiled by duckrec (ignored)")
    for key in raw:
        if key != "__line__" and key not in _ACCEPTED and key not in _PATH_KEYS:
            warnings.append(f"{DBT_PROJECT_FILE}: `{key}` is not supported by duckrec (ignored)")

    for rel, what in (("packages.yml", "packages"), ("dependencies.yml", "packages"),
                      (str(raw.get("snapshot-paths", ["snapshots"])[0]), "snapshots")):
        if (root / rel).is_file() or ((root / rel).is_dir() and any((root / rel).rglob("*.sql"))):
            warnings.append(f"{rel}: {what} are not supported by duckrec (ignored)")
    for p in sorted((root / paths["macros"]).rglob("*.sql")) if (root / paths["macros"]).is_dir() else []:
        if "{% test " in p.read_text(encoding="utf-8") or "{%- test " in p.read_text(encoding="utf-8"):
            warnings.append(f"{p.relative_to(root)}: custom generic tests ({{% test %}}) are not supported "
                            "by duckrec (ignored)")
    variables = strip_lines(raw.get("vars") or {})
    # dbt scopes vars by project name too: `vars: {jaffle_shop: {x: 1}}`
    if isinstance(variables.get(name), dict):
        variables = {**{k: v for k, v in variables.items() if k != name}, **variables[name]}

    profile = str(raw.get("profile") or name)
    targets, default_target, target_schema = _profiles(root, profile, warnings)
    settings = {
        "name": name, "paths": paths, "targets": targets, "target": default_target, "vars": variables,
        "models": raw.get("models") or {}, "seeds": raw.get("seeds") or {},
    }
    extras = {"clean_targets": [str(p) for p in _list(raw.get("clean-targets") or [paths["target"]])],
              "target_schema": target_schema}
    return settings, warnings, extras


def _list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def profiles_path(root: Path) -> Path | None:
    """dbt's search order: $DBT_PROFILES_DIR, the project folder, ~/.dbt."""
    candidates = [Path(os.environ["DBT_PROFILES_DIR"]) / PROFILES_FILE] if os.environ.get("DBT_PROFILES_DIR") else []
    candidates += [root / PROFILES_FILE, Path.home() / ".dbt" / PROFILES_FILE]
    return next((p for p in candidates if p.is_file()), None)


def _profiles(root: Path, profile: str, warnings: list[str]) -> tuple[dict[str, dict], str, str]:
    path = profiles_path(root)
    fallback = {"dev": {"warehouse": f"{profile}.duckdb"}}
    if path is None:
        warnings.append(f"no {PROFILES_FILE} found (looked in $DBT_PROFILES_DIR, the project, ~/.dbt): "
                        f"building into {profile}.duckdb")
        return fallback, "dev", "main"
    shown = PROFILES_FILE if path.parent == root else str(path)
    doc = load_yaml(path, shown)
    entry = doc.get(profile) if isinstance(doc, dict) else None
    if not isinstance(entry, dict) or not isinstance(entry.get("outputs"), dict):
        raise ProjectError(f"no profile {profile!r} with outputs: (the profile that {DBT_PROJECT_FILE} names)",
                           path=shown)
    targets: dict[str, dict] = {}
    schemas: dict[str, str] = {}
    for tname, out in entry["outputs"].items():
        if tname == "__line__":
            continue
        if not isinstance(out, dict) or out.get("type") != "duckdb":
            raise ProjectError(f"output {tname!r} has type {out.get('type') if isinstance(out, dict) else out!r}; "
                               "duckrec builds only DuckDB (type: duckdb)", path=shown, line=_line(out))
        db = str(out.get("path") or ":memory:")
        if db.startswith(":memory:") or db.startswith("md:"):
            raise ProjectError(f"output {tname!r}: path {db!r}; duckrec builds into a DuckDB file "
                               "(set path: warehouse.duckdb)", path=shown, line=_line(out))
        target: dict[str, Any] = {"warehouse": db}
        for key in ("threads", "extensions", "settings"):
            if out.get(key) is not None:
                target[key] = strip_lines(out[key])
        for key in out:
            if key != "__line__" and key not in _OUTPUT_KEYS:
                warnings.append(f"{shown}: outputs.{tname}.{key} is not supported by duckrec (ignored)")
        targets[str(tname)] = target
        schemas[str(tname)] = str(out.get("schema") or "main")
    default = str(entry.get("target") or next(iter(targets)))
    return targets, default, schemas.get(default, "main")


def _line(d: Any) -> int | None:
    return d.get("__line__") if isinstance(d, dict) else None


def schema_names(project, target_schema: str) -> None:
    """dbt's generate_schema_name: a node lands in the target schema, or `<target>_<custom>`."""
    for node in project.nodes.values():
        custom = node.config.get("schema")
        node.config["schema"] = f"{target_schema}_{str(custom).strip()}" if custom else target_schema
