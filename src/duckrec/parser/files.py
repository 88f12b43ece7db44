"""Which seeds, models, singular tests and macros the project's folders hold, each read
into a Node with its folder config and its dependencies."""
from __future__ import annotations

from pathlib import Path

from duckrec.core.errors import ProjectError
from duckrec.core.nodes import PROJECT_FILE, Node, Project
from duckrec.parser.config import check_model_config, merge_config, check_severity, folder_config
from duckrec.parser.dependencies import python_dependencies, sql_dependencies


def add_node(project: Project, node: Node) -> None:
    other = project.nodes.get(node.unique_id)
    if other is not None:
        raise ProjectError(
            f"duplicate {node.kind} name {node.name!r}: defined in {other.path} and {node.path}; "
            "a name must be unique across sql/, python_models/ and seeds/",
            path=node.path,
        )
    if node.kind == "model" and f"seed.{node.name}" in project.nodes:
        raise ProjectError(f"model {node.name!r} has the same name as a seed", path=node.path)
    project.nodes[node.unique_id] = node


def discover_seeds(project: Project) -> None:
    seeds_dir = project.path("seeds")
    tree = project.seed_defaults
    configured = {k for k, v in tree.items() if not k.startswith("+") and isinstance(v, dict)}
    if project.config_file != PROJECT_FILE:
        configured = set()  # dbt: a seed is a file; keys under seeds: are the project and folders
    names: dict[str, str] = {}
    if seeds_dir.is_dir():
        for p in sorted(seeds_dir.rglob("*.csv")):
            names.setdefault(p.stem, str(p.relative_to(project.root)))
    for name in configured:
        names.setdefault(name, "")
    for name, found in sorted(names.items()):
        default = {"schema": "raw"} if project.config_file == PROJECT_FILE else {}  # dbt: the target schema
        config = merge_config(default, folder_config(tree, [name], project.name))
        if config.get("enabled") is False:
            continue
        rel = str(config.get("file") or found)
        if not rel:
            raise ProjectError(
                f"seed {name!r} has no file: set seeds.{name}.+file or put {name}.csv in {project.paths['seeds']}/",
                path=project.config_file,
            )
        config["materialized"] = "seed"
        add_node(project, Node(unique_id=f"seed.{name}", kind="seed", name=name, path=rel,
                           language="csv", config=config, fqn=[name]))


def discover_models(project: Project) -> None:
    macros = project.path("macros").resolve()
    for key, suffix, language in (("sql", ".sql", "sql"), ("python_models", ".py", "python")):
        base = project.path(key)
        if not base.is_dir():
            continue
        for p in sorted(base.rglob(f"*{suffix}")):
            if language == "sql" and macros in p.resolve().parents:
                continue
            if language == "python" and (p.name.startswith("_") or "__pycache__" in p.parts):
                continue
            rel = str(p.relative_to(project.root))
            parts = list(p.relative_to(base).parts[:-1])
            code = p.read_text(encoding="utf-8")
            config = folder_config(project.model_defaults, parts, project.name)
            if language == "sql":
                refs, sources, inline = sql_dependencies(code, rel)
            else:
                refs, sources, inline = python_dependencies(code, rel)
                config.setdefault("materialized", "table")
            config = merge_config(config, inline)
            node = Node(unique_id=f"model.{p.stem}", kind="model", name=p.stem, path=rel, language=language,
                        raw_code=code, config=config, refs=refs, sources=sources, fqn=parts + [p.stem],
                        inline_config=inline)
            check_model_config(node)
            if config.get("enabled") is False:
                continue
            add_node(project, node)


def discover_singular_tests(project: Project) -> None:
    base = project.path("data_tests")
    if not base.is_dir():
        return
    for p in sorted(base.rglob("*.sql")):
        rel = str(p.relative_to(project.root))
        code = p.read_text(encoding="utf-8")
        refs, sources, config = sql_dependencies(code, rel)
        config = {"severity": "error", **config}
        config["severity"] = check_severity(config["severity"], rel, None)
        add_node(project, Node(unique_id=f"test.{p.stem}", kind="test", name=p.stem, path=rel, raw_code=code,
                           config=config, inline_config=dict(config), refs=refs, sources=sources, test={"type": "singular"},
                           fqn=[p.stem]))


def discover_macros(project: Project) -> None:
    macros = project.path("macros")
    if macros.is_dir():
        project.macro_files = sorted(str(p.relative_to(project.root)) for p in macros.rglob("*.sql"))


def seed_paths(project: Project, node: Node) -> list[Path]:
    """The files a seed reads: its +file, or every file its glob matches, in name order."""
    rel = node.path
    path = Path(rel) if Path(rel).is_absolute() else project.root / rel
    if any(c in rel for c in "*?["):
        anchor = Path(path.anchor)
        return sorted(p for p in anchor.glob(str(path.relative_to(anchor))) if p.is_file())
    return [path] if path.is_file() else []
