"""Render SQL models and tests: dbt's Jinja functions, macros, ephemeral CTEs.

Most models only call ref()/source()/var(); those are rendered without Jinja, which keeps
a 500-model build from paying Jinja's compile cost per file. Anything else goes to Jinja.
"""
from __future__ import annotations

import ast
import dataclasses
import os
import re
from typing import Any

from duckrec.render import fast_template
from duckrec.core.errors import DuckrecError, NodeError, ProjectError
from duckrec.core.nodes import Node, Project
from duckrec.render.resolve import Resolver, runtime
from duckrec.render.macro_syntax import MACRO_NAME_RE

_MISSING = fast_template.MISSING
# {{ expression }} with optional whitespace control, or {# comment #}
_TAG_RE = re.compile(r"\{\{(-?)(.*?)(-?)\}\}|\{#(-?)(.*?)(-?)#\}", re.S)
_IF_INCREMENTAL_RE = re.compile(
    r"\{%\s*if\s+is_incremental\(\)\s*%\}((?:(?!\{%).)*?)(?:\{%\s*else\s*%\}((?:(?!\{%).)*?))?\{%\s*endif\s*%\}", re.S)
_TEST_BLOCK_RE = re.compile(r"\{%-?\s*test\s.*?\{%-?\s*endtest\s*-?%\}", re.S)
_FAST_CALLS = {"ref", "source", "var", "env_var", "config", "is_incremental"}


class ConfigCall:
    """config(...) in a template: records settings while parsing, renders as nothing;
    `config.get(key, default)` reads the node's configuration as dbt does."""

    def __init__(self, node: Node, recorded: dict[str, Any] | None = None):
        self._node = node
        self._recorded = recorded

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        if self._recorded is not None:
            for arg in args:  # dbt also takes config({'materialized': 'table'})
                if isinstance(arg, dict):
                    self._recorded.update(arg)
            self._recorded.update(kwargs)
        return ""

    def get(self, key: str, default: Any = None) -> Any:
        if self._recorded is not None and key in self._recorded:
            return self._recorded[key]
        return self._node.config.get(key, default)

    def require(self, key: str) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise ProjectError(f"config {key!r} is required and not set", path=self._node.path)
        return value


class Renderer:
    def __init__(self, project: Project, target: str):
        self.project = project
        self.target = target
        self._env = None
        self._macro_templates: list[Any] | None = None
        self._fast_macro_table: Any = _MISSING  # set on first use
        self.empty = False  # --empty: every ref()/source() reads zero rows (dbt's --empty)
        # dbt's invocation_id and run_started_at; the runner sets them for each build
        self.invocation_id: str | None = None
        self.run_started_at = None

    # ---------------------------------------------------------------- context
    def context(self, node: Node, incremental: bool, ephemerals: list[str],
                resolver: Resolver | None = None, recorded: dict[str, Any] | None = None) -> dict[str, Any]:
        res = resolver or runtime(self.project, node)

        def ref(*args: str, **kwargs: Any) -> str:
            target = res.ref(*args, **kwargs)
            if target.kind == "model" and target.materialized == "ephemeral":
                if target.unique_id not in ephemerals:
                    ephemerals.append(target.unique_id)
                return f"__dbt__cte__{target.name}"
            return self._read(target.relation)

        def source(source_name: str, table: str) -> str:
            return self._read(res.source(source_name, table).relation)

        def env_var(name: str, default: Any = _MISSING) -> Any:
            value = os.environ.get(name)
            if value is None:
                if default is _MISSING:
                    raise ProjectError(f"env_var({name!r}) is not set and has no default", path=node.path)
                return default
            return value

        return {
            "ref": ref, "source": source, "var": res.var, "env_var": env_var,
            "config": ConfigCall(node, recorded), "is_incremental": lambda: incremental,
            "this": node.relation, "target": {"name": self.target, "schema": "main", "type": "duckdb"},
            "project_name": self.project.name, "log": lambda *a, **k: "",
            "invocation_id": self.invocation_id, "run_started_at": self.run_started_at,
        }

    def _read(self, relation: str) -> str:
        return f"(select * from {relation} limit 0)" if self.empty else relation

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

    def parse(self, node: Node) -> tuple[list[str], list[tuple[str, str]], dict[str, Any]] | None:
        """What rendering the node asks for, as dbt's parser sees it (is_incremental() false):
        refs, sources and config() settings, including those made inside macros. None when
        the node cannot be rendered without a warehouse (its run-time render reports why)."""
        resolver = Resolver(self.project, node, record=True)
        recorded: dict[str, Any] = {}
        ctx = self.context(node, False, [], resolver, recorded)
        try:
            if self._render_fast(node.raw_code, ctx) is None:
                self._render_jinja(node, ctx)
        except DuckrecError:
            return None
        return resolver.refs, resolver.sources, recorded

    def _render_fast(self, code: str, ctx: dict[str, Any]) -> str | None:
        if self._fast_macros() is None:
            return None  # a project macro named ref, var, config...: only Jinja calls it
        simple = self._render_simple(code, ctx)
        if simple is not None:
            return simple
        # set/for/if, macro calls (dbt's jaffle_shop payment columns, cents_to_dollars()):
        # rendered as Jinja would render them, else None and Jinja renders
        try:
            return fast_template.render(code, {"this": ctx["this"]}, lambda e: self._eval_simple(e, ctx),
                                        self._fast_macros())
        except DuckrecError:
            return None  # Jinja raises it again, with the macro's file and line

    def _render_simple(self, code: str, ctx: dict[str, Any]) -> str | None:
        """ref()/source()/var() calls, comments and the is_incremental() idiom (the output
        keeps the template's trailing newline, as duckrec always rendered these)."""
        if "{%" in code:
            # the incremental idiom is common enough to spare Jinja for it
            code = _IF_INCREMENTAL_RE.sub(
                lambda m: m.group(1) if ctx["is_incremental"]() else (m.group(2) or ""), code)
            if "{%" in code:
                return None
        out: list[str] = []
        pos = 0
        strip_next = False
        for m in _TAG_RE.finditer(code):
            text = code[pos:m.start()]
            if strip_next:
                text = text.lstrip()
            if m.group(1) is not None:      # {{ expression }}
                value = self._eval_simple(m.group(2), ctx)
                if value is _MISSING:
                    return None
                left, right = m.group(1), m.group(3)
            else:                           # {# comment #}
                value, left, right = "", m.group(4), m.group(6)
            if left:
                text = text.rstrip()
            out.append(text)
            out.append(str(value))
            strip_next = bool(right)
            pos = m.end()
        tail = code[pos:]
        out.append(tail.lstrip() if strip_next else tail)
        return "".join(out)

    def _fast_macros(self) -> dict[str, Any] | None:
        """The project's macros the fast renderer can run: all of them when every macro file
        is plain macro blocks of its subset, else none (Jinja then renders any macro call).
        None when a macro overrides a function the fast renderer evaluates itself."""
        if self._fast_macro_table is _MISSING:
            table: dict[str, Any] | None = {}
            texts = [(self.project.root / rel).read_text(encoding="utf-8") for rel in self.project.macro_files]
            if any(m.group(1) in _FAST_CALLS | {"this"} for text in texts for m in MACRO_NAME_RE.finditer(text)):
                table = None
            else:
                for text in texts:
                    parsed = fast_template.parse_macros(text)
                    if parsed is None:
                        table = {}
                        break
                    table.update(parsed)  # later files win, as in _load_macros
            self._fast_macro_table = table
        return self._fast_macro_table

    @staticmethod
    def _eval_simple(expr: str, ctx: dict[str, Any] | None) -> Any:
        try:
            tree = ast.parse(expr.strip(), mode="eval").body
        except SyntaxError:
            return _MISSING
        if isinstance(tree, ast.Name) and tree.id == "this":
            return ctx["this"] if ctx is not None else ""
        if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id in _FAST_CALLS):
            return _MISSING
        try:
            args = [ast.literal_eval(a) for a in tree.args]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in tree.keywords if k.arg}
        except ValueError:
            return _MISSING
        if ctx is None:
            return ""
        return ctx[tree.func.id](*args, **kwargs)

    def _jinja_env(self):
        if self._env is None:
            import jinja2

            root = self.project.root

            macro_files = set(self.project.macro_files)

            def load(name: str):
                path = root / name
                text = path.read_text(encoding="utf-8")
                if name in macro_files and ("{% test" in text or "{%- test" in text):
                    # dbt's custom generic tests are not supported (a warning says so): drop the
                    # blocks, keeping the lines so errors elsewhere in the file keep theirs
                    text = _TEST_BLOCK_RE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
                return text, str(path), lambda: True

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
            self._load_macros(ctx)
            own = self.project.nodes.get(node.unique_id)
            from_file = node.path.endswith(".sql") and own is not None and own.raw_code is node.raw_code
            tmpl = self._compile(env, node.path) if from_file else env.from_string(node.raw_code)
            return tmpl.render(ctx)
        except DuckrecError as e:
            # keep a location the error already has (a syntax error's line); else where the
            # template was when it raised: the macro's file and line, called from the model
            path, line, via = self._location(e, node)
            if e.line and e.path:
                path, line, via = e.path, e.line, ""
            message = str(e).split(": ", 1)[-1] if e.path else str(e)
            raise type(e)(message + via, path=path, line=line) from None
        except Exception as e:  # noqa: BLE001 - any Jinja runtime error becomes a located message
            import jinja2

            if isinstance(e, jinja2.TemplateSyntaxError):
                raise ProjectError(f"Jinja syntax error: {e.message}", path=e.filename and os.path.relpath(
                    e.filename, self.project.root) or node.path, line=e.lineno) from None
            path, line, via = self._location(e, node)
            raise NodeError(f"Jinja error in {node.name}: {type(e).__name__}: {e}{via}", path=path,
                            line=line) from None

    def _load_macros(self, ctx: dict[str, Any]) -> None:
        """Macros see this model's ref/var/this, so each model gets its own macro modules. They
        share one namespace (`shared=True` keeps ctx itself, not a copy), filled before any
        macro runs: a macro calls a macro of any file, whatever the files' order."""
        for key, value in self._jinja_env().globals.items():
            ctx.setdefault(key, value)
        for tmpl in self._macros():
            module = tmpl.make_module(vars=ctx, shared=True)
            for name in dir(module):
                if not name.startswith("_"):
                    ctx[name] = getattr(module, name)

    def call_macro(self, node: Node, macro: str, args: dict[str, Any], extra: dict[str, Any]) -> str:
        """`macro(**args)` with the project's macros loaded, as dbt's run-operation calls it."""
        from duckrec.core.errors import did_you_mean

        ctx = self.context(node, False, [])
        ctx.update(extra)
        code = "{{ " + macro + "(**__args) }}"
        known = sorted(m.group(1) for rel in self.project.macro_files
                       for m in MACRO_NAME_RE.finditer((self.project.root / rel).read_text(encoding="utf-8")))
        if macro not in known:
            raise ProjectError(f"no macro named {macro!r} in {self.project.paths['macros']}/"
                               + did_you_mean(macro, known))
        return self._render_jinja(dataclasses.replace(node, raw_code=code), {**ctx, "__args": args})

    def _location(self, exc: BaseException, node: Node) -> tuple[str, int | None, str]:
        """(file, line, " (called from ...)") of the innermost template frame of `exc`."""
        frames = []
        macro_files = set(self.project.macro_files)
        import traceback

        for frame in traceback.extract_tb(exc.__traceback__):
            try:
                rel = os.path.relpath(frame.filename, self.project.root)
            except ValueError:
                continue
            if rel == node.path or rel in macro_files:
                frames.append((rel, frame.lineno))
        if not frames:
            return node.path, None, ""
        path, line = frames[-1]
        own = [ln for rel, ln in frames if rel == node.path]
        if path != node.path:
            where = f"{node.path}:{own[-1]}" if own else node.path
            return path, line, f" (in a macro, called from {where})"
        return path, line, ""

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
