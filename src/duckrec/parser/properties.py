"""The YAML properties under models/: descriptions, columns, sources and generic data tests
(named as dbt names them)."""
from __future__ import annotations

import re
from typing import Any

from duckrec.core.errors import ProjectError, did_you_mean
from duckrec.core.nodes import PROJECT_FILE, Column, Node, Project, Source
from duckrec.parser.config import check_model_config, merge_config, check_severity
from duckrec.parser.dependencies import REF_RE, SOURCE_RE
from duckrec.parser.yaml_file import line_of, strip_lines, load_yaml

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


def read_properties(project: Project) -> None:
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
                    raise ProjectError(f"each item under {section}: needs a name", path=rel, line=line_of(entry))
                node = project.nodes.get(f"{kind}.{entry['name']}")
                if node is None:
                    names = [n.name for n in project.nodes.values() if n.kind == kind]
                    raise ProjectError(
                        f"{kind} {entry['name']!r} is described here but no such {kind} exists"
                        + did_you_mean(entry["name"], names),
                        path=rel, line=line_of(entry),
                    )
                node.description = str(entry.get("description") or "")
                if isinstance(entry.get("config"), dict):
                    # precedence: project.yml folders < YAML properties < config() in the file
                    node.config = merge_config(merge_config(node.config, strip_lines(entry["config"])), node.inline_config)
                    if kind == "model":
                        check_model_config(node)
                for col in entry.get("columns") or []:
                    if not isinstance(col, dict) or "name" not in col:
                        raise ProjectError("each column needs a name", path=rel, line=line_of(col))
                    node.columns[col["name"]] = Column(col["name"], str(col.get("description") or ""),
                                                       col.get("data_type"), any(
                        isinstance(c, dict) and c.get("type") == "not_null" for c in col.get("constraints") or []))
                    for t in (col.get("data_tests") or []) + (col.get("tests") or []):
                        pending_tests.append(({"test": t, "node": node, "column": col["name"],
                                               "line": line_of(col)}, rel))
                for t in (entry.get("data_tests") or []) + (entry.get("tests") or []):
                    pending_tests.append(({"test": t, "node": node, "column": None, "line": line_of(entry)}, rel))
    for spec, rel in pending_tests:
        _add_generic_test(project, spec, rel)


def _read_source(project: Project, src: Any, rel: str) -> None:
    if not isinstance(src, dict) or "name" not in src:
        raise ProjectError("each source needs a name", path=rel, line=line_of(src))
    schema = str(src.get("schema") or src["name"])
    for table in src.get("tables") or []:
        if not isinstance(table, dict) or "name" not in table:
            raise ProjectError(f"source {src['name']}: each table needs a name", path=rel, line=line_of(table))
        key = (str(src["name"]), str(table["name"]))
        # dbt's freshness: a table's own settings over its source's
        project.sources[key] = Source(key[0], key[1], schema, str(table.get("identifier") or table["name"]), rel,
                                      str(table.get("description") or ""),
                                      table.get("loaded_at_field", src.get("loaded_at_field")),
                                      strip_lines(table.get("freshness", src.get("freshness"))))


def _add_generic_test(project: Project, spec: dict, rel: str) -> None:
    raw = spec["test"]
    node: Node = spec["node"]
    column = spec["column"]
    if isinstance(raw, str):
        test_name, kwargs = raw, {}
    elif isinstance(raw, dict):
        keys = [k for k in raw if k != "__line__"]
        if len(keys) != 1:
            raise ProjectError(f"a test is a name or a one-key mapping, found keys {keys}", path=rel, line=line_of(raw))
        test_name = keys[0]
        kwargs = strip_lines(raw[test_name] or {})
        if not isinstance(kwargs, dict):
            raise ProjectError(f"test {test_name}: expected a mapping of arguments", path=rel, line=line_of(raw))
    else:
        raise ProjectError(f"a test is a name or a mapping, found {raw!r}", path=rel, line=spec["line"])
    if test_name not in GENERIC_TESTS:
        raise ProjectError(f"unknown test {test_name!r}; expected one of {list(GENERIC_TESTS)}"
                           + did_you_mean(test_name, GENERIC_TESTS), path=rel, line=line_of(raw) or spec["line"])
    kwargs = dict(kwargs)
    if "arguments" in kwargs:  # dbt 1.10: `arguments:` holds the test's own arguments
        arguments = kwargs.pop("arguments")
        if not isinstance(arguments, dict):
            raise ProjectError(f"test {test_name}: arguments: must be a mapping", path=rel, line=line_of(raw))
        kwargs = {**kwargs, **arguments}
    config = {"severity": "error"}
    config.update(kwargs.pop("config", None) or {})
    for key in TEST_CONFIG_ARGS:
        if key in kwargs:
            config[key] = kwargs.pop(key)
    custom_name = kwargs.pop("name", None)
    if config.get("enabled") is False:
        return
    config["severity"] = check_severity(config["severity"], rel, spec["line"])
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
        m = REF_RE.search(str(kwargs["to"]))
        if m:
            refs.append(m.group(4) or m.group(2))
        sources = [(m.group(2), m.group(4)) for m in SOURCE_RE.finditer(str(kwargs["to"]))]
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
