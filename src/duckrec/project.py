"""Read project.yml, the YAML properties and the model files into plain node records.

Everything downstream (graph, render, runner) shares these records; nothing here touches
the warehouse or imports the Python models.
"""
from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ProjectError, did_you_mean

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
}

_REF_RE = re.compile(r"""\bref\(\s*(['"])([^'"]+)\1\s*(?:,\s*(['"])([^'"]+)\3\s*)?\)""")
_SOURCE_RE = re.compile(r"""\bsource\(\s*(['"])([^'"]+)\1\s*,\s*(['"])([^'"]+)\3\s*\)""")
# config(...) as an expression, with or without whitespace control, or in {% do %}
_CONFIG_RE = re.compile(r"(?:\{\{-?|\{%-?\s*do)\s*config\((.*?)\)\s*-?(?:\}\}|%\})", re.S)


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
        raw = _render_env(raw)
        p = Path(raw).expanduser()
        return p if p.is_absolute() else self.root / p

    def by_name(self, name: str) -> Node | None:
        for kind in ("model", "seed"):
            node = self.nodes.get(f"{kind}.{name}")
            if node is not None:
                return node
        return None


_ENV_RE = re.compile(r"""\{\{\s*env_var\(\s*['"]([^'"]+)['"]\s*(?:,\s*['"]([^'"]*)['"]\s*)?\)\s*\}\}""")


def _render_env(text: str) -> str:
    def sub(m: re.Match) -> str:
        value = os.environ.get(m.group(1), m.group(2))
        if value is None:
            raise ProjectError(f"env_var({m.group(1)!r}) is not set and has no default", path=PROJECT_FILE)
        return value

    return _ENV_RE.sub(sub, text)


# --------------------------------------------------------------------------- YAML


def load_yaml(path: Path, rel: str) -> Any:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProjectError("file not found", path=rel) from None
    try:
        return yaml.load(text, Loader=_line_loader())
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        raise ProjectError(f"YAML syntax error: {e.problem or e}", path=rel, line=line) from None


_LOADER = None


def _line_loader():
    """A YAML loader that records each mapping's line as '__line__' for error messages."""
    global _LOADER
    if _LOADER is None:
        import yaml

        base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

        class LineLoader(base):  # type: ignore[misc, valid-type]
            def construct_mapping(self, node, deep=False):
                mapping = super().construct_mapping(node, deep=deep)
                mapping["__line__"] = node.start_mark.line + 1
                return mapping

        _LOADER = LineLoader
    return _LOADER


def _line(d: Any) -> int | None:
    return d.get("__line__") if isinstance(d, dict) else None


def _strip_lines(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_lines(v) for k, v in value.items() if k != "__line__"}
    if isinstance(value, list):
        return [_strip_lines(v) for v in value]
    return value


# --------------------------------------------------------------------------- loading


CACHE_FILE = "partial_parse.pickle"


def load_project(root: str | Path = ".", cli_vars: dict[str, Any] | None = None) -> Project:
    """The parsed project, its vars (with --vars) checked against the project's vars schema."""
    project = _load_project(root, cli_vars)
    if project.vars_schema:
        from .varschema import check_vars, load_schema

        check_vars(project.vars, load_schema(project.root, project.vars_schema), project.vars_schema)
    return project


def _load_project(root: str | Path = ".", cli_vars: dict[str, Any] | None = None) -> Project:
    """The parsed project; reuses target/partial_parse.pickle while no project file changed.

    Like dbt's partial parsing: an unchanged project skips YAML parsing and file reads. Parsing
    renders some models with the vars, so other --vars (or another $DBT_PROFILES_DIR) parse again.
    """
    import pickle

    from . import __version__

    root = Path(root).resolve()
    cache = root / "target" / CACHE_FILE
    try:
        with open(cache, "rb") as f:
            cached = pickle.load(f)
        if (cached["version"] == __version__ and cached["cli_vars"] == (cli_vars or {})
                and cached.get("profiles_dir") == os.environ.get("DBT_PROFILES_DIR")
                and cached["signature"] == _signature(root, cached["dirs"])):
            return cached["project"]
    except Exception:  # noqa: BLE001 - any unreadable or stale cache just means a full parse
        pass
    import time

    started = time.time_ns()
    project = _parse_project(root, cli_vars)
    dirs = sorted({project.paths[k] for k in ("sql", "python_models", "models", "seeds", "macros", "data_tests")})
    signature = _signature(root, dirs)
    if any(mtime >= started - 2_000_000_000 for _, mtime, _ in signature):
        # a file saved while we parsed could be cached with a stale parse: skip caching this time
        return project
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(CACHE_FILE + f".{os.getpid()}")
        with open(tmp, "wb") as f:
            pickle.dump({"version": __version__, "dirs": dirs, "signature": signature,
                         "cli_vars": cli_vars or {}, "profiles_dir": os.environ.get("DBT_PROFILES_DIR"),
                         "project": project}, f)
        os.replace(tmp, cache)
    except OSError:
        pass
    return project


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


def _signature(root: Path, dirs: list[str]) -> list[tuple[str, int, int]]:
    """Path, mtime and size of the project file(s) and of every file under the project's folders."""
    out = []
    for name in (PROJECT_FILE, "dbt_project.yml", "profiles.yml"):
        try:
            st = os.stat(root / name)
        except FileNotFoundError:
            continue
        out.append((name, st.st_mtime_ns, st.st_size))
    for d in dirs:
        for base, subdirs, files in os.walk(root / d):
            subdirs[:] = sorted(x for x in subdirs if x != "__pycache__")
            for name in sorted(files):
                st = os.stat(os.path.join(base, name))
                out.append((os.path.join(base, name), st.st_mtime_ns, st.st_size))
    return out


def _parse_project(root: Path, cli_vars: dict[str, Any] | None) -> Project:
    cfg_path = root / PROJECT_FILE
    warnings: list[str] = []
    extras: dict[str, Any] = {}
    if cfg_path.exists():
        raw = load_yaml(cfg_path, PROJECT_FILE)
    elif (root / "dbt_project.yml").exists():
        from . import dbt_project  # a dbt project, read as it is

        raw, warnings, extras = dbt_project.read(root)
    else:
        raise ProjectError(f"no {PROJECT_FILE} (or dbt_project.yml) in {root}: run duckrec from a project folder "
                           "or pass --project-dir")
    if not isinstance(raw, dict):
        raise ProjectError("expected a mapping at the top level", path=PROJECT_FILE)
    if not raw.get("name"):
        raise ProjectError("missing 'name:' (the project's name)", path=PROJECT_FILE, line=1)

    paths = dict(DEFAULT_PATHS)
    for key, value in _strip_lines(raw.get("paths") or {}).items():
        if key not in DEFAULT_PATHS:
            raise ProjectError(
                f"unknown key paths.{key}; expected one of {sorted(DEFAULT_PATHS)}" + did_you_mean(key, DEFAULT_PATHS),
                path=PROJECT_FILE, line=_line(raw.get("paths")),
            )
        paths[key] = str(value)

    targets = _strip_lines(raw.get("targets") or {"dev": {"warehouse": "warehouse.duckdb"}})
    default_target = str(raw.get("target") or next(iter(targets)))
    variables = _strip_lines(raw.get("vars") or {})
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
        model_defaults=_strip_lines(raw.get("models") or {}),
        seed_defaults=_strip_lines(raw.get("seeds") or {}),
    )
    if extras:
        project.config_file, project.warnings = "dbt_project.yml", warnings
        project.clean_targets = extras["clean_targets"]
    _check_config_tree(project.model_defaults, "models", raw.get("models"), project)
    _check_config_tree(project.seed_defaults, "seeds", raw.get("seeds"), project)
    _discover_seeds(project)
    _discover_models(project)
    _read_properties(project)
    _discover_singular_tests(project)
    macros = project.path("macros")
    if macros.is_dir():
        project.macro_files = sorted(str(p.relative_to(root)) for p in macros.rglob("*.sql"))
    _read_docs(project)
    _rendered_dependencies(project)
    if extras:
        from . import dbt_project

        dbt_project.schema_names(project, extras["target_schema"])
    return project


_CALL_RE = {name: re.compile(rf"\b{name}\s*\(") for name in ("ref", "source", "config")}
_MACRO_DEF_RE = re.compile(r"\{%-?\s*macro\s+([A-Za-z_]\w*)\s*\((.*?)\{%-?\s*endmacro", re.S)


def _macros_that_ref(project: Project) -> set[str]:
    """Names of the project's macros that call ref(), source() or config(), or call such a macro."""
    bodies: dict[str, str] = {}
    for rel in project.macro_files:
        for m in _MACRO_DEF_RE.finditer((project.root / rel).read_text(encoding="utf-8")):
            bodies[m.group(1)] = m.group(2)
    hiding = {n for n, body in bodies.items() if any(r.search(body) for r in _CALL_RE.values())}
    changed = True
    while changed:
        changed = False
        for n, body in bodies.items():
            if n not in hiding and any(re.search(rf"\b{h}\s*\(", body) for h in hiding):
                hiding.add(n)
                changed = True
    return hiding


def _needs_render(code: str, hiding: set[str]) -> bool:
    """Whether reading the file's literal calls could miss a dependency or a config(): it calls
    a macro that makes them, or makes one with a non-literal argument."""
    if "{" not in code:
        return False
    if len(_CALL_RE["ref"].findall(code)) != len(_REF_RE.findall(code)):
        return True
    if len(_CALL_RE["source"].findall(code)) != len(_SOURCE_RE.findall(code)):
        return True
    if _CALL_RE["config"].search(code) and not _static_config_complete(code):
        return True
    return any(re.search(rf"\b{h}\s*\(", code) for h in hiding)


def _static_config_complete(code: str) -> bool:
    calls = _CONFIG_RE.findall(code)
    if len(calls) != len(_CALL_RE["config"].findall(code)):
        return False
    for args in calls:
        try:
            call = ast.parse(f"f({args})", mode="eval").body
            if call.args or any(k.arg is None for k in call.keywords):
                return False
            for k in call.keywords:
                ast.literal_eval(k.value)
        except (SyntaxError, ValueError):
            return False
    return True


def _rendered_dependencies(project: Project) -> None:
    """dbt's parse: render each SQL model and singular test (is_incremental() false) and add
    the refs, sources and config() it makes, inside macros too, to what was read statically."""
    from .render import Renderer  # rendering is part of parsing, as in dbt

    renderer = Renderer(project, project.default_target)
    hiding = _macros_that_ref(project)
    for node in list(project.nodes.values()):
        if node.language != "sql" or (node.kind == "test" and (node.test or {}).get("type") != "singular"):
            continue
        if not _needs_render(node.raw_code, hiding):
            continue  # every ref/source/config() is a literal call in the file: read statically
        found = renderer.parse(node)
        if found is None:
            continue  # cannot render without the warehouse; its run-time render says why
        refs, sources, config = found
        node.refs = list(dict.fromkeys(node.refs + refs))
        node.sources = list(dict.fromkeys(node.sources + sources))
        if any(node.inline_config.get(k, object()) != v for k, v in config.items()):
            node.inline_config = {**node.inline_config, **config}
            node.config = _merge(node.config, config)
            if node.kind == "model":
                _check_model_config(node)
            else:
                node.config["severity"] = _severity(node.config.get("severity", "error"), node.path, None)
            if node.config.get("enabled") is False:
                for uid in [u for u, n in project.nodes.items() if u == node.unique_id
                            or n.attached_to == node.unique_id]:
                    del project.nodes[uid]


_DOCS_RE = re.compile(r"\{%-?\s*docs\s+([A-Za-z_]\w*)\s*-?%\}(.*?)\{%-?\s*enddocs\s*-?%\}", re.S)
_DOC_CALL_RE = re.compile(r"""\{\{-?\s*doc\(\s*(['"])([^'"]+)\1\s*\)\s*-?\}\}""")


def _read_docs(project: Project) -> None:
    """dbt's docs blocks (`{% docs name %}...{% enddocs %}` in .md files of the project's
    folders), then `{{ doc('name') }}` in every description."""
    seen: set[Path] = set()
    for key in ("models", "sql", "seeds", "macros"):
        base = project.path(key)
        if not base.is_dir():
            continue
        for p in sorted(base.rglob("*.md")):
            if p in seen:
                continue
            seen.add(p)
            text = p.read_text(encoding="utf-8")
            for m in _DOCS_RE.finditer(text):
                name, rel = m.group(1), str(p.relative_to(project.root))
                if name in project.doc_blocks:
                    raise ProjectError(f"docs block {name!r} is defined twice (also in {project.doc_blocks[name][0]})",
                                       path=rel, line=text.count("\n", 0, m.start()) + 1)
                project.doc_blocks[name] = (rel, m.group(2).strip())

    def render(text: str, where: str, path: str) -> str:
        if "doc(" not in text:
            return text

        def sub(m: re.Match) -> str:
            if m.group(2) not in project.doc_blocks:
                raise ProjectError(f"{where}: description uses doc({m.group(2)!r}), which no {{% docs %}} block "
                                   "defines" + did_you_mean(m.group(2), project.doc_blocks), path=path)
            return project.doc_blocks[m.group(2)][1]

        return _DOC_CALL_RE.sub(sub, text)

    for node in project.nodes.values():
        node.description = render(node.description, f"{node.kind} {node.name}", node.path)
        for col in node.columns.values():
            col.description = render(col.description, f"{node.name}.{col.name}", node.path)
    for src in project.sources.values():
        src.description = render(src.description, f"source {src.source_name}.{src.name}", src.path)


def _check_config_tree(tree: dict, where: str, raw: Any, project: Project) -> None:
    for key, value in tree.items():
        if key.startswith("+"):
            if key[1:] not in CONFIG_KEYS and project.config_file != PROJECT_FILE:
                project.warnings.append(f"{project.config_file}: {where}.{key} is not supported by duckrec (ignored)")
            elif key[1:] not in CONFIG_KEYS:
                raise ProjectError(
                    f"unknown config {where}.{key}; known: {sorted(CONFIG_KEYS)}" + did_you_mean(key[1:], CONFIG_KEYS),
                    path=PROJECT_FILE, line=_line(raw),
                )
            if key == "+materialized" and value not in MATERIALIZATIONS:
                raise ProjectError(
                    f"{where}.+materialized is {value!r}; expected one of {list(MATERIALIZATIONS)}",
                    path=project.config_file, line=_line(raw),
                )
        elif isinstance(value, dict):
            _check_config_tree(value, f"{where}.{key}", raw.get(key) if isinstance(raw, dict) else None, project)


def folder_config(tree: dict, parts: list[str], project_name: str) -> dict[str, Any]:
    """dbt's nested per-folder config: deeper folders override, tags accumulate."""
    if project_name in tree and isinstance(tree[project_name], dict) and project_name not in parts[:1]:
        merged = folder_config({k: v for k, v in tree.items() if k != project_name}, parts, "\0")
        deeper = folder_config(tree[project_name], parts, "\0")
        return _merge(merged, deeper)
    config: dict[str, Any] = {}
    level = tree
    for depth in range(len(parts) + 1):
        for key, value in level.items():
            name = key[1:] if key.startswith("+") else key
            if key.startswith("+") or (name in CONFIG_KEYS and not isinstance(value, dict)):
                config = _merge(config, {name: value})
        if depth == len(parts):
            break
        nxt = level.get(parts[depth])
        if not isinstance(nxt, dict):
            break
        level = nxt
    return config


def _merge(base: dict, extra: dict) -> dict:
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


def _add(project: Project, node: Node) -> None:
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


def _discover_seeds(project: Project) -> None:
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
        config = _merge(default, folder_config(tree, [name], project.name))
        if config.get("enabled") is False:
            continue
        rel = str(config.get("file") or found)
        if not rel:
            raise ProjectError(
                f"seed {name!r} has no file: set seeds.{name}.+file or put {name}.csv in {project.paths['seeds']}/",
                path=project.config_file,
            )
        config["materialized"] = "seed"
        _add(project, Node(unique_id=f"seed.{name}", kind="seed", name=name, path=rel,
                           language="csv", config=config, fqn=[name]))


def _discover_models(project: Project) -> None:
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
            config = _merge(config, inline)
            node = Node(unique_id=f"model.{p.stem}", kind="model", name=p.stem, path=rel, language=language,
                        raw_code=code, config=config, refs=refs, sources=sources, fqn=parts + [p.stem],
                        inline_config=inline)
            _check_model_config(node)
            if config.get("enabled") is False:
                continue
            _add(project, node)


def _check_model_config(node: Node) -> None:
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


def sql_dependencies(code: str, rel: str) -> tuple[list[str], list[tuple[str, str]], dict]:
    """refs, sources and static config() of a SQL model, read without rendering it."""
    refs = list(dict.fromkeys(m.group(4) or m.group(2) for m in _REF_RE.finditer(code)))
    sources = list(dict.fromkeys((m.group(2), m.group(4)) for m in _SOURCE_RE.finditer(code)))
    config: dict[str, Any] = {}
    for m in _CONFIG_RE.finditer(code):
        try:
            call = ast.parse(f"f({m.group(1)})", mode="eval").body
        except SyntaxError:
            continue  # Jinja, not Python (`~`, filters): rendering the model at parse time reads it
        assert isinstance(call, ast.Call)
        for kw in call.keywords:
            try:
                if kw.arg:
                    config[kw.arg] = ast.literal_eval(kw.value)
            except ValueError:
                pass  # an expression (var(), a macro): rendering the model at parse time reads it
    return refs, sources, config


def python_dependencies(code: str, rel: str) -> tuple[list[str], list[tuple[str, str]], dict]:
    """dbt.ref()/dbt.source() calls and dbt.config() of a Python model, found without importing it."""
    try:
        tree = ast.parse(code, filename=rel)
    except SyntaxError as e:
        raise ProjectError(f"Python syntax error: {e.msg}", path=rel, line=e.lineno) from None
    refs: list[str] = []
    sources: list[tuple[str, str]] = []
    config: dict[str, Any] = {}
    has_model = False
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "model":
            has_model = True
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        attr, owner = node.func.attr, node.func.value
        if not (isinstance(owner, ast.Name) and owner.id == "dbt"):
            continue
        args = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        if attr == "ref":
            if len(args) != len(node.args) or not args:
                raise ProjectError("dbt.ref() takes a literal model name, e.g. dbt.ref('events')",
                                   path=rel, line=node.lineno)
            refs.append(args[-1])
        elif attr == "source":
            if len(args) != 2 or len(node.args) != 2:
                raise ProjectError("dbt.source() takes two literal names, e.g. dbt.source('raw', 'ratings')",
                                   path=rel, line=node.lineno)
            sources.append((args[0], args[1]))
        elif attr == "config":
            for kw in node.keywords:
                try:
                    if kw.arg:
                        config[kw.arg] = ast.literal_eval(kw.value)
                except ValueError:
                    raise ProjectError("dbt.config() takes literal keyword arguments", path=rel,
                                       line=node.lineno) from None
    if not has_model:
        raise ProjectError("a Python model must define `def model(dbt, session):`", path=rel)
    return list(dict.fromkeys(refs)), list(dict.fromkeys(sources)), config


def _discover_singular_tests(project: Project) -> None:
    base = project.path("data_tests")
    if not base.is_dir():
        return
    for p in sorted(base.rglob("*.sql")):
        rel = str(p.relative_to(project.root))
        code = p.read_text(encoding="utf-8")
        refs, sources, config = sql_dependencies(code, rel)
        config = {"severity": "error", **config}
        config["severity"] = _severity(config["severity"], rel, None)
        _add(project, Node(unique_id=f"test.{p.stem}", kind="test", name=p.stem, path=rel, raw_code=code,
                           config=config, inline_config=dict(config), refs=refs, sources=sources, test={"type": "singular"},
                           fqn=[p.stem]))


# --------------------------------------------------------------------------- properties

GENERIC_TESTS = ("unique", "not_null", "accepted_values", "relationships")
# dbt's test arguments that are configuration, not arguments (and not part of the test's name)
TEST_CONFIG_ARGS = ("severity", "tags", "enabled", "where", "limit", "warn_if", "error_if", "fail_calc",
                    "store_failures", "store_failures_as", "meta", "database", "schema", "alias")


def dbt_test_name(test_type: str, model: str, args: dict[str, Any]) -> str:
    """dbt's name for a generic test: type, model, then the arguments' values in argument-name
    order, each cleaned to [0-9a-zA-Z_] and joined by '__'."""
    flat: list[str] = []
    for key in sorted(args):
        value = args[key]
        if key == "model" or value is None:
            continue
        parts = list(value.values()) if isinstance(value, dict) else list(value) if isinstance(
            value, (list, tuple)) else [value]
        flat.extend(str(p) for p in parts)
    return f"{test_type}_{model}_" + "__".join(re.sub(r"[^0-9a-zA-Z_]+", "_", a) for a in flat)


def dbt_test_alias(name: str, test_type: str, model: str) -> str:
    """dbt's short name (its compiled file and alias): the name, or when 64 characters or
    longer, its first 30 identifying characters and an md5 of the whole name."""
    if len(name) < 64:
        return name
    import hashlib

    return f"{test_type}_{model}"[:30] + "_" + hashlib.md5(name.encode("utf-8")).hexdigest()


def _read_properties(project: Project) -> None:
    base = project.path("models")
    if not base.is_dir():
        return
    files = sorted(list(base.rglob("*.yml")) + list(base.rglob("*.yaml")))
    pending_tests: list[tuple[dict, str]] = []
    for p in files:
        rel = str(p.relative_to(project.root))
        doc = load_yaml(p, rel)
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ProjectError("expected a mapping with models:, seeds: or sources:", path=rel)
        for key in doc:
            if key not in ("version", "sources", "models", "seeds", "__line__") and project.config_file != PROJECT_FILE:
                project.warnings.append(f"{rel}: `{key}:` is not supported by duckrec (ignored)")
        for src in doc.get("sources") or []:
            _read_source(project, src, rel)
        for section, kind in (("models", "model"), ("seeds", "seed")):
            for entry in doc.get(section) or []:
                if not isinstance(entry, dict) or "name" not in entry:
                    raise ProjectError(f"each item under {section}: needs a name", path=rel, line=_line(entry))
                node = project.nodes.get(f"{kind}.{entry['name']}")
                if node is None:
                    names = [n.name for n in project.nodes.values() if n.kind == kind]
                    raise ProjectError(
                        f"{kind} {entry['name']!r} is described here but no such {kind} exists"
                        + did_you_mean(entry["name"], names),
                        path=rel, line=_line(entry),
                    )
                node.description = str(entry.get("description") or "")
                if isinstance(entry.get("config"), dict):
                    # precedence: project.yml folders < YAML properties < config() in the file
                    node.config = _merge(_merge(node.config, _strip_lines(entry["config"])), node.inline_config)
                    if kind == "model":
                        _check_model_config(node)
                for col in entry.get("columns") or []:
                    if not isinstance(col, dict) or "name" not in col:
                        raise ProjectError("each column needs a name", path=rel, line=_line(col))
                    node.columns[col["name"]] = Column(col["name"], str(col.get("description") or ""),
                                                       col.get("data_type"), any(
                        isinstance(c, dict) and c.get("type") == "not_null" for c in col.get("constraints") or []))
                    for t in (col.get("data_tests") or []) + (col.get("tests") or []):
                        pending_tests.append(({"test": t, "node": node, "column": col["name"],
                                               "line": _line(col)}, rel))
                for t in (entry.get("data_tests") or []) + (entry.get("tests") or []):
                    pending_tests.append(({"test": t, "node": node, "column": None, "line": _line(entry)}, rel))
    for spec, rel in pending_tests:
        _add_generic_test(project, spec, rel)


def _severity(value: Any, rel: str, line: int | None) -> str:
    severity = str(value).lower()
    if severity not in ("warn", "error"):
        raise ProjectError(f"severity must be warn or error, found {value!r}", path=rel, line=line)
    return severity


def _read_source(project: Project, src: Any, rel: str) -> None:
    if not isinstance(src, dict) or "name" not in src:
        raise ProjectError("each source needs a name", path=rel, line=_line(src))
    schema = str(src.get("schema") or src["name"])
    for table in src.get("tables") or []:
        if not isinstance(table, dict) or "name" not in table:
            raise ProjectError(f"source {src['name']}: each table needs a name", path=rel, line=_line(table))
        key = (str(src["name"]), str(table["name"]))
        # dbt's freshness: a table's own settings over its source's
        project.sources[key] = Source(key[0], key[1], schema, str(table.get("identifier") or table["name"]), rel,
                                      str(table.get("description") or ""),
                                      table.get("loaded_at_field", src.get("loaded_at_field")),
                                      _strip_lines(table.get("freshness", src.get("freshness"))))


def _add_generic_test(project: Project, spec: dict, rel: str) -> None:
    raw = spec["test"]
    node: Node = spec["node"]
    column = spec["column"]
    if isinstance(raw, str):
        test_name, kwargs = raw, {}
    elif isinstance(raw, dict):
        keys = [k for k in raw if k != "__line__"]
        if len(keys) != 1:
            raise ProjectError(f"a test is a name or a one-key mapping, found keys {keys}", path=rel, line=_line(raw))
        test_name = keys[0]
        kwargs = _strip_lines(raw[test_name] or {})
        if not isinstance(kwargs, dict):
            raise ProjectError(f"test {test_name}: expected a mapping of arguments", path=rel, line=_line(raw))
    else:
        raise ProjectError(f"a test is a name or a mapping, found {raw!r}", path=rel, line=spec["line"])
    if test_name not in GENERIC_TESTS:
        raise ProjectError(f"unknown test {test_name!r}; expected one of {list(GENERIC_TESTS)}"
                           + did_you_mean(test_name, GENERIC_TESTS), path=rel, line=_line(raw) or spec["line"])
    kwargs = dict(kwargs)
    if "arguments" in kwargs:  # dbt 1.10: `arguments:` holds the test's own arguments
        arguments = kwargs.pop("arguments")
        if not isinstance(arguments, dict):
            raise ProjectError(f"test {test_name}: arguments: must be a mapping", path=rel, line=_line(raw))
        kwargs = {**kwargs, **arguments}
    config = {"severity": "error"}
    config.update(kwargs.pop("config", None) or {})
    for key in TEST_CONFIG_ARGS:
        if key in kwargs:
            config[key] = kwargs.pop(key)
    custom_name = kwargs.pop("name", None)
    if config.get("enabled") is False:
        return
    config["severity"] = _severity(config["severity"], rel, spec["line"])
    column = kwargs.pop("column_name", column)
    if test_name in ("unique", "not_null", "accepted_values", "relationships") and not column:
        raise ProjectError(f"test {test_name} on {node.name} needs a column (put it under columns: or set column_name)",
                           path=rel, line=spec["line"])
    if test_name == "accepted_values" and not isinstance(kwargs.get("values"), list):
        raise ProjectError("accepted_values needs values: [...]", path=rel, line=spec["line"])
    refs = [node.name]
    if test_name == "relationships":
        if "to" not in kwargs or "field" not in kwargs:
            raise ProjectError("relationships needs to: ref('model') and field: column", path=rel, line=spec["line"])
        m = _REF_RE.search(str(kwargs["to"]))
        if m:
            refs.append(m.group(4) or m.group(2))
        sources = [(m.group(2), m.group(4)) for m in _SOURCE_RE.finditer(str(kwargs["to"]))]
    base = str(custom_name) if custom_name else dbt_test_name(test_name, node.name, {**kwargs, "column_name": column})
    name, i = base, 1
    while f"test.{name}" in project.nodes:
        i += 1
        name = f"{base}_{i}"
    if test_name == "not_null" and config["severity"] == "error" and not config.get("where") \
            and column in node.columns:
        node.columns[column].not_null = True
    tags = list(node.tags) + list(config.get("tags") or [])
    config["tags"] = tags
    project.nodes[f"test.{name}"] = Node(
        unique_id=f"test.{name}", kind="test", name=name, path=rel, config=config, refs=refs,
        sources=sources if test_name == "relationships" else [],
        test={"type": test_name, "column": column, "kwargs": kwargs, "model": node.name,
              "alias": dbt_test_alias(name, test_name, node.name)},
        attached_to=node.unique_id, fqn=node.fqn[:-1] + [name],
    )
