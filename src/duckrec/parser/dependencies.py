"""What a model or singular test depends on: ref(), source() and config() read from the
file without running it, and, where a macro or an expression hides them, read by
rendering it as dbt's parse does."""
from __future__ import annotations

import ast
import re
from typing import Any

from duckrec.core.errors import ProjectError
from duckrec.core.nodes import Project
from duckrec.parser.config import check_model_config, merge_config, check_severity
from duckrec.render.macro_syntax import MACRO_RE, called

REF_RE = re.compile(r"""\bref\(\s*(['"])([^'"]+)\1\s*(?:,\s*(['"])([^'"]+)\3\s*)?\)""")
SOURCE_RE = re.compile(r"""\bsource\(\s*(['"])([^'"]+)\1\s*,\s*(['"])([^'"]+)\3\s*\)""")
# config(...) as an expression, with or without whitespace control, or in {% do %}
CONFIG_RE = re.compile(r"(?:\{\{-?|\{%-?\s*do)\s*config\((.*?)\)\s*-?(?:\}\}|%\})", re.S)


def sql_dependencies(code: str, rel: str) -> tuple[list[str], list[tuple[str, str]], dict]:
    """refs, sources and static config() of a SQL model, read without rendering it."""
    refs = list(dict.fromkeys(m.group(4) or m.group(2) for m in REF_RE.finditer(code)))
    sources = list(dict.fromkeys((m.group(2), m.group(4)) for m in SOURCE_RE.finditer(code)))
    config: dict[str, Any] = {}
    for m in CONFIG_RE.finditer(code):
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


def _macros_that_ref(project: Project) -> set[str]:
    """Names of the project's macros that call ref(), source() or config(), or call such a macro."""
    bodies: dict[str, str] = {}
    for rel in project.macro_files:
        for m in MACRO_RE.finditer((project.root / rel).read_text(encoding="utf-8")):
            bodies[m.group(1)] = m.group(2) + ") " + m.group(3)
    hiding = {n for n, body in bodies.items() if {"ref", "source", "config"} & set(called(body))}
    changed = True
    while changed:
        changed = False
        for n, body in bodies.items():
            if n not in hiding and hiding & set(called(body)):
                hiding.add(n)
                changed = True
    return hiding


def _needs_render(code: str, hiding: set[str]) -> bool:
    """Whether reading the file's literal calls could miss a dependency or a config(): it calls
    a macro that makes them, or makes one with a non-literal argument."""
    if "{" not in code:
        return False
    calls = called(code)
    if calls.count("ref") != len(REF_RE.findall(code)):
        return True
    if calls.count("source") != len(SOURCE_RE.findall(code)):
        return True
    if "config" in calls and not _static_config_complete(code):
        return True
    return bool(hiding & set(calls))


def _static_config_complete(code: str) -> bool:
    calls = CONFIG_RE.findall(code)
    if len(calls) != called(code).count("config"):
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


def rendered_dependencies(project: Project) -> None:
    """dbt's parse: render each SQL model and singular test (is_incremental() false) and add
    the refs, sources and config() it makes, inside macros too, to what was read statically."""
    from duckrec.render.renderer import Renderer  # rendering is part of parsing, as in dbt

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
            node.config = merge_config(node.config, config)
            if node.kind == "model":
                check_model_config(node)
            else:
                node.config["severity"] = check_severity(node.config.get("severity", "error"), node.path, None)
            if node.config.get("enabled") is False:
                for uid in [u for u, n in project.nodes.items() if u == node.unique_id
                            or n.attached_to == node.unique_id]:
                    del project.nodes[uid]
