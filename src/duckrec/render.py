"""Render SQL models and tests: dbt's Jinja functions, macros, ephemeral CTEs.

Most models only call ref()/source()/var(); those are rendered without Jinja, which keeps
a 500-model build from paying Jinja's compile cost per file. Anything else goes to Jinja.
"""
from __future__ import annotations

import ast
import os
import re
import traceback
from typing import Any

from .errors import DuckrecError, NodeError, ProjectError, did_you_mean
from .project import Node, Project

_MISSING = object()
_EXPR_RE = re.compile(r"\{\{(.*?)\}\}", re.S)
_IF_INCREMENTAL_RE = re.compile(
    r"\{%\s*if\s+is_incremental\(\)\s*%\}((?:(?!\{%).)*?)(?:\{%\s*else\s*%\}((?:(?!\{%).)*?))?\{%\s*endif\s*%\}", re.S)
_FAST_CALLS = {"ref", "source", "var", "env_var", "config", "is_incremental"}


class Renderer:
    def __init__(self, project: Project, target: str):
        self.project = project
        self.target = target
        self._env = None
        self._macro_templates: list[Any] | None = None
        # dbt's invocation_id and run_started_at; the runner sets them for each build
        self.invocation_id: str | None = None
        self.run_started_at = None

    # ---------------------------------------------------------------- context
    def context(self, node: Node, incremental: bool, ephemerals: list[str]) -> dict[str, Any]:
        project = self.project

        def ref(*names: str) -> str:
            name = names[-1]
            target = project.by_name(name)
            if target is None:
                raise ProjectError(f"ref({name!r}) is not a model or seed."
                                   + did_you_mean(name, [n.name for n in project.nodes.values()]), path=node.path)
            if target.kind == "model" and target.materialized == "ephemeral":
                if target.unique_id not in ephemerals:
                    ephemerals.append(target.unique_id)
                return f"__dbt__cte__{target.name}"
            return target.relation

        def source(source_name: str, table: str) -> str:
            src = project.sources.get((source_name, table))
            if src is None:
                raise ProjectError(f"source({source_name!r}, {table!r}) is not declared", path=node.path)
            return src.relation

        def var(name: str, default: Any = _MISSING) -> Any:
            if name in project.vars:
                return project.vars[name]
            if default is _MISSING:
                raise ProjectError(f"var({name!r}) is not set in project.yml vars or --vars, and has no default"
                                   + did_you_mean(name, project.vars), path=node.path)
            return default

        def env_var(name: str, default: Any = _MISSING) -> Any:
            value = os.environ.get(name)
            if value is None:
                if default is _MISSING:
                    raise ProjectError(f"env_var({name!r}) is not set and has no default", path=node.path)
                return default
            return value

        return {
            "ref": ref, "source": source, "var": var, "env_var": env_var,
            "config": lambda *a, **k: "", "is_incremental": lambda: incremental,
            "this": node.relation, "target": {"name": self.target, "schema": "main", "type": "duckdb"},
            "project_name": project.name, "log": lambda *a, **k: "",
            "invocation_id": self.invocation_id, "run_started_at": self.run_started_at,
        }

    # ---------------------------------------------------------------- render
    def render(self, node: Node, incremental: bool = False) -> tuple[str, list[str]]:
        """The node's SQL with Jinja applied, and the ephemeral models it uses."""
        ephemerals: list[str] = []
        ctx = self.context(node, incremental, ephemerals)
        code = node.raw_code
        fast = self._render_fast(code, ctx)
        if fast is not None:
            return fast, ephemerals
        return self._render_jinja(node, ctx), ephemerals

    def _render_fast(self, code: str, ctx: dict[str, Any]) -> str | None:
        if "{%" in code:
            # the incremental idiom is common enough to spare Jinja for it
            code = _IF_INCREMENTAL_RE.sub(lambda m: m.group(1) if ctx["is_incremental"]() else (m.group(2) or ""),
                                          code)
        if "{%" in code or "{#" in code:
            return None
        out: list[str] = []
        pos = 0
        for m in _EXPR_RE.finditer(code):
            value = self._eval_simple(m.group(1), ctx)
            if value is _MISSING:
                return None
            out.append(code[pos:m.start()])
            out.append(str(value))
            pos = m.end()
        out.append(code[pos:])
        return "".join(out)

    @staticmethod
    def _eval_simple(expr: str, ctx: dict[str, Any]) -> Any:
        try:
            tree = ast.parse(expr.strip(), mode="eval").body
        except SyntaxError:
            return _MISSING
        if isinstance(tree, ast.Name) and tree.id == "this":
            return ctx["this"]
        if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id in _FAST_CALLS):
            return _MISSING
        try:
            args = [ast.literal_eval(a) for a in tree.args]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in tree.keywords if k.arg}
        except ValueError:
            return _MISSING
        return ctx[tree.func.id](*args, **kwargs)

    def _jinja_env(self):
        if self._env is None:
            import jinja2

            root = self.project.root

            def load(name: str):
                path = root / name
                return path.read_text(encoding="utf-8"), str(path), lambda: True

            self._env = jinja2.Environment(loader=jinja2.FunctionLoader(load), undefined=jinja2.StrictUndefined,
                                           extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"])
        return self._env

    def _macros(self) -> list[Any]:
        if self._macro_templates is None:
            env = self._jinja_env()
            self._macro_templates = [self._compile(env, rel) for rel in self.project.macro_files]
        return self._macro_templates

    def _compile(self, env: Any, rel: str) -> Any:
        import jinja2

        try:
            return env.get_template(rel)
        except jinja2.TemplateSyntaxError as e:
            raise ProjectError(f"Jinja syntax error: {e.message}", path=rel, line=e.lineno) from None

    def _render_jinja(self, node: Node, ctx: dict[str, Any]) -> str:
        env = self._jinja_env()
        try:
            # Macros see this model's ref/var/this, so each model gets its own macro module.
            for tmpl in self._macros():
                module = tmpl.make_module(vars=ctx)
                for name in dir(module):
                    if not name.startswith("_"):
                        ctx[name] = getattr(module, name)
            tmpl = self._compile(env, node.path) if node.path.endswith(".sql") else env.from_string(node.raw_code)
            return tmpl.render(ctx)
        except DuckrecError as e:
            # keep a location the error already has (a syntax error's line, a macro file's path)
            line = e.line or _template_line(e, node.path)
            raise type(e)(str(e).split(": ", 1)[-1] if e.path else str(e), path=e.path or node.path,
                          line=line) from None
        except Exception as e:  # noqa: BLE001 - any Jinja runtime error becomes a located message
            import jinja2

            if isinstance(e, jinja2.TemplateSyntaxError):
                raise ProjectError(f"Jinja syntax error: {e.message}", path=e.filename and os.path.relpath(
                    e.filename, self.project.root) or node.path, line=e.lineno) from None
            line = _template_line(e, node.path)
            raise NodeError(f"Jinja error in {node.name}: {type(e).__name__}: {e}", path=node.path, line=line) from None

    # ---------------------------------------------------------------- compile
    def compile(self, node: Node, incremental: bool = False) -> str:
        """Final SQL: rendered, with the ephemeral models it uses prepended as CTEs."""
        sql, ephemerals = self.render(node, incremental)
        if not ephemerals:
            return sql
        ctes: list[tuple[str, str]] = []
        seen: set[str] = set()

        def add(uid: str) -> None:
            if uid in seen:
                return
            seen.add(uid)
            eph = self.project.nodes[uid]
            inner, nested = self.render(eph)
            for n in nested:
                add(n)
            ctes.append((f"__dbt__cte__{eph.name}", inner))

        for uid in ephemerals:
            add(uid)
        return prepend_ctes(sql, ctes)


_WITH_RE = re.compile(r"^(\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*)with\b(\s+recursive\b)?", re.I | re.S)


def prepend_ctes(sql: str, ctes: list[tuple[str, str]]) -> str:
    block = ",\n".join(f"{name} as (\n{body.strip().rstrip(';')}\n)" for name, body in ctes)
    m = _WITH_RE.match(sql)
    if m:
        return f"{m.group(1)}with{m.group(2) or ''} {block},\n{sql[m.end():]}"
    return f"with {block}\n{sql}"


def _template_line(exc: BaseException, path: str) -> int | None:
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.endswith(path):
            line = frame.lineno
    return line
