"""The few Jinja statements dbt models use most, rendered without importing Jinja.

dbt's own jaffle_shop builds its payment columns with

    {% set payment_methods = ['credit_card', 'coupon', 'bank_transfer', 'gift_card'] %}
    {% for payment_method in payment_methods -%}
    sum(case when payment_method = '{{ payment_method }}' then amount else 0 end) as {{ payment_method }}_amount,
    {% endfor -%}

Importing Jinja and compiling such a template costs more than building a small project's
tables, so this module renders the subset below itself and returns None for anything else
(the caller then renders with Jinja, which reports errors in its own words):

- text, `{# comments #}`, whitespace control (`{%-`, `-%}`, and the same on `{{ }}`, `{# #}`);
- `{% set name = <value> %}`: a literal (string, number, list, tuple, dict), a name, `loop.<attr>`
  or a simple call;
- `{% for name in <name, literal or call> %} ... {% endfor %}`, with `loop.index`,
  `loop.index0`, `loop.first`, `loop.last`, `loop.length`, `loop.revindex`, `loop.revindex0`;
- `{% if <condition> %} ... {% elif <condition> %} ... {% else %} ... {% endif %}` where a
  condition is `[not] loop.<attr>`, `[not] is_incremental()` or `[not] <name>`;
- `{{ name }}`, `{{ loop.<attr> }}` and the caller's simple calls (`ref('x')`, `var('k')`);
- calls of the project's macros whose files hold only `{% macro name(params) %} ... {% endmacro %}`
  blocks of this subset (dbt's `cents_to_dollars(column_name)`), with literal or local arguments.

The output is what Jinja (dbt's settings: no trim_blocks, no lstrip_blocks, a single
trailing newline dropped) renders for the same template; tests compare the two.
"""
from __future__ import annotations

import ast
import re
from collections.abc import Callable
from typing import Any

MISSING = object()

_TOKEN_RE = re.compile(r"\{\{(-?)(.*?)(-?)\}\}|\{%(-?)(.*?)(-?)%\}|\{#(-?)(.*?)(-?)#\}", re.S)
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_SET_RE = re.compile(rf"set\s+({_NAME})\s*=\s*(.+)", re.S)
_FOR_RE = re.compile(rf"for\s+({_NAME})\s+in\s+(.+)", re.S)
_MACRO_RE = re.compile(rf"macro\s+({_NAME})\s*\((.*)\)", re.S)
_LOOP_ATTRS = {"index", "index0", "first", "last", "length", "revindex", "revindex0"}


class _Unsupported(Exception):
    """The template uses something this renderer does not do: Jinja renders it."""


class Macro:
    def __init__(self, params: list[tuple[str, Any]], body: list):
        self.params = params  # (name, default or MISSING)
        self.body = body


def render(code: str, scope: dict[str, Any], call: Callable[[str], Any],
           macros: dict[str, Macro] | None = None) -> str | None:
    """`code` rendered, or None when it needs Jinja. `scope` holds names a template may read
    (`this`); `call(expr)` evaluates a simple call such as `ref('x')` and returns MISSING
    when it cannot; `macros` are the project's macros (from parse_macros)."""
    if _plain(code) is None:
        return None
    try:
        tree, _ = _parse(_lex(code), 0, ())
        out: list[str] = []
        _run(tree, _Env(dict(scope), call, macros or {}, scope), out)
    except _Unsupported:
        return None
    return "".join(out)


def parse_macros(code: str) -> dict[str, Macro] | None:
    """The macros of a macro file, or None when the file holds anything but macro blocks
    of this subset (text between them, other than whitespace and comments, included)."""
    if _plain(code) is None:
        return None
    try:
        items = _lex(code)
    except _Unsupported:
        return None
    out: dict[str, Macro] = {}
    i = 0
    while i < len(items):
        kind, text = items[i]
        if kind == "text" and not text.strip():
            i += 1
            continue
        m = _MACRO_RE.fullmatch(text.strip()) if kind == "stmt" else None
        if m is None:
            return None
        try:
            params = _params(m.group(2))
            body, i = _parse(items, i + 1, ("endmacro",))
        except _Unsupported:
            return None
        if items[i][1].strip() not in ("endmacro", f"endmacro {m.group(1)}"):
            return None
        out[m.group(1)] = Macro(params, body)
        i += 1
    return out


def _plain(code: str) -> str | None:
    if "\r" in code or "{%+" in code or "{{+" in code or "+%}" in code:
        return None
    return code


def _params(text: str) -> list[tuple[str, Any]]:
    try:
        fn = ast.parse(f"def f({text}): pass").body[0]
    except SyntaxError:
        raise _Unsupported from None
    a = fn.args
    if a.vararg or a.kwarg or a.kwonlyargs or a.posonlyargs:
        raise _Unsupported
    names = [x.arg for x in a.args]
    defaults: list[Any] = [MISSING] * (len(names) - len(a.defaults)) + [
        _literal(ast.unparse(d)) for d in a.defaults]
    return list(zip(names, defaults))


# --------------------------------------------------------------------------- lexing

def _lex(code: str) -> list[tuple[str, str]]:
    """(kind, text) items: ("text", s), ("expr", e), ("stmt", s); comments disappear.
    Whitespace control is applied to the text around each tag, as Jinja's lexer does."""
    if code.endswith("\n"):
        code = code[:-1]  # Jinja drops one trailing newline (keep_trailing_newline=False)
    raw: list[list[Any]] = []  # [kind, text, strip_before, strip_after]
    pos = 0
    for m in _TOKEN_RE.finditer(code):
        raw.append(["text", code[pos:m.start()], False, False])
        if m.group(2) is not None:
            raw.append(["expr", m.group(2), bool(m.group(1)), bool(m.group(3))])
        elif m.group(5) is not None:
            raw.append(["stmt", m.group(5), bool(m.group(4)), bool(m.group(6))])
        else:
            raw.append(["comment", "", bool(m.group(7)), bool(m.group(9))])
        pos = m.end()
    raw.append(["text", code[pos:], False, False])
    for i, item in enumerate(raw):
        if item[0] != "text":
            continue
        text = item[1]
        if i > 0 and raw[i - 1][3]:
            text = text.lstrip()
        if i + 1 < len(raw) and raw[i + 1][2]:
            text = text.rstrip()
        item[1] = text
    out = [(kind, text) for kind, text, _, _ in raw if kind != "comment" and not (kind == "text" and not text)]
    for kind, text in out:
        if kind == "text" and ("{{" in text or "{%" in text or "{#" in text):
            raise _Unsupported  # an unclosed tag: Jinja reports it
    return out


# --------------------------------------------------------------------------- parsing

def _parse(items: list[tuple[str, str]], i: int, until: tuple[str, ...]) -> tuple[list, int]:
    """Nodes up to (not including) a statement whose keyword is in `until`; returns the
    nodes and the index of that statement (len(items) at the end)."""
    nodes: list = []
    while i < len(items):
        kind, text = items[i]
        if kind == "text":
            nodes.append(("text", text))
            i += 1
            continue
        if kind == "expr":
            nodes.append(("expr", _expr(text)))
            i += 1
            continue
        stmt = text.strip()
        keyword = stmt.split(None, 1)[0] if stmt else ""
        if keyword in until:
            return nodes, i
        if keyword == "set":
            m = _SET_RE.fullmatch(stmt)
            if not m:
                raise _Unsupported
            nodes.append(("set", m.group(1), _expr(m.group(2))))
            i += 1
        elif keyword == "for":
            m = _FOR_RE.fullmatch(stmt)
            if not m or re.search(r"\b(if|recursive)\b", m.group(2)):
                raise _Unsupported
            body, i = _parse(items, i + 1, ("endfor", "else"))
            if items[i][1].strip() != "endfor":
                raise _Unsupported
            nodes.append(("for", m.group(1), _expr(m.group(2)), body))
            i += 1
        elif keyword == "if":
            branches = []
            cond = _condition(stmt[2:])
            while True:
                body, i = _parse(items, i + 1, ("elif", "else", "endif"))
                branches.append((cond, body))
                nxt = items[i][1].strip()  # _parse raised if the block was left open
                if nxt == "endif":
                    break
                if nxt.split(None, 1)[0] == "elif":
                    cond = _condition(nxt[4:])
                    continue
                if nxt != "else":
                    raise _Unsupported
                body, i = _parse(items, i + 1, ("endif",))
                if items[i][1].strip() != "endif":
                    raise _Unsupported
                branches.append((None, body))
                break
            nodes.append(("if", branches))
            i += 1
        else:
            raise _Unsupported
    if until:
        raise _Unsupported  # a block left open: Jinja reports it
    return nodes, i


def _tree(text: str) -> ast.expr:
    try:
        return ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise _Unsupported from None


def _literal(text: str) -> Any:
    tree = _tree(text)
    if isinstance(tree, ast.Name):
        raise _Unsupported  # true/false/none and names differ between Jinja and Python
    try:
        return ast.literal_eval(tree)
    except ValueError:
        raise _Unsupported from None


def _expr(text: str) -> tuple:
    """("name", n) | ("loop", attr) | ("literal", value) | ("call", source text)."""
    tree = _tree(text)
    if isinstance(tree, ast.Name):
        return ("name", tree.id)
    if isinstance(tree, ast.Attribute) and isinstance(tree.value, ast.Name) and tree.value.id == "loop" \
            and tree.attr in _LOOP_ATTRS:
        return ("loop", tree.attr)
    if isinstance(tree, (ast.List, ast.Tuple, ast.Dict, ast.Constant)):
        return ("literal", _literal(text))
    if isinstance(tree, ast.Call):
        return ("call", text)
    raise _Unsupported


def _condition(text: str) -> tuple[bool, tuple]:
    tree = _tree(text)
    negate = False
    if isinstance(tree, ast.UnaryOp) and isinstance(tree.op, ast.Not):
        negate, tree = True, tree.operand
    source = ast.unparse(tree)
    if isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id == "is_incremental" \
            and not tree.args and not tree.keywords:
        return negate, ("call", source)
    if isinstance(tree, (ast.Name, ast.Attribute)):
        return negate, _expr(source)
    raise _Unsupported


# --------------------------------------------------------------------------- running

class _Env:
    """What a running template sees: its names, the caller's simple calls, the macros, and
    the names a macro body sees (the template's globals, not the caller's locals)."""

    def __init__(self, scope: dict[str, Any], call: Callable[[str], Any], macros: dict[str, Macro],
                 globals_: dict[str, Any], depth: int = 0):
        self.scope = scope
        self.call = call
        self.macros = macros
        self.globals = globals_
        self.depth = depth

    def child(self, scope: dict[str, Any]) -> "_Env":
        return _Env(scope, self.call, self.macros, self.globals, self.depth)


def _call_macro(source: str, env: _Env) -> Any:
    tree = _tree(source)
    if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id in env.macros):
        return MISSING
    if env.depth > 20:
        raise _Unsupported  # deep or endless recursion: Jinja reports it
    macro = env.macros[tree.func.id]
    names = [n for n, _ in macro.params]
    if len(tree.args) > len(names) or any(isinstance(a, ast.Starred) for a in tree.args):
        raise _Unsupported
    bound: dict[str, Any] = {}
    for name, arg in zip(names, tree.args):
        bound[name] = _value(_expr(ast.unparse(arg)), env)
    for kw in tree.keywords:
        if kw.arg is None or kw.arg not in names or kw.arg in bound:
            raise _Unsupported
        bound[kw.arg] = _value(_expr(ast.unparse(kw.value)), env)
    for name, default in macro.params:
        if name not in bound and default is not MISSING:
            bound[name] = default  # a parameter with neither: Jinja's StrictUndefined names it
    out: list[str] = []
    _run(macro.body, _Env({**env.globals, **bound}, env.call, env.macros, env.globals, env.depth + 1), out)
    return "".join(out)


def _value(expr: tuple, env: "_Env") -> Any:
    scope = env.scope
    kind, arg = expr
    if kind == "literal":
        return arg
    if kind == "name":
        if arg not in scope:
            raise _Unsupported  # Jinja's StrictUndefined names it
        return scope[arg]
    if kind == "loop":
        loop = scope.get("loop")
        if not isinstance(loop, _Loop):
            raise _Unsupported
        return getattr(loop, arg)
    value = _call_macro(arg, env)
    if value is MISSING:
        value = env.call(arg)
    if value is MISSING:
        raise _Unsupported
    return value


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)) or value is None:
        return str(value)
    raise _Unsupported  # Jinja's repr of lists and dicts differs in details


def _run(nodes: list, env: _Env, out: list[str]) -> None:
    scope = env.scope
    for node in nodes:
        kind = node[0]
        if kind == "text":
            out.append(node[1])
        elif kind == "expr":
            out.append(_text(_value(node[1], env)))
        elif kind == "set":
            scope[node[1]] = _value(node[2], env)
        elif kind == "for":
            items = _value(node[2], env)
            if not isinstance(items, (list, tuple)):
                raise _Unsupported
            n = len(items)
            for k, item in enumerate(items):
                inner = dict(scope)  # names set in the body stay in the body, as in Jinja
                inner[node[1]] = item
                inner["loop"] = _Loop(k, n)
                _run(node[3], env.child(inner), out)
        else:  # if
            for cond, body in node[1]:
                if cond is None or _truth(cond, env):
                    _run(body, env, out)
                    break


def _truth(cond: tuple[bool, tuple], env: _Env) -> bool:
    negate, expr = cond
    value = _value(expr, env)
    if not isinstance(value, (bool, int, float, str, list, tuple, dict)) and value is not None:
        raise _Unsupported
    return not value if negate else bool(value)


class _Loop:
    __slots__ = ("index0", "length")

    def __init__(self, index0: int, length: int):
        self.index0 = index0
        self.length = length

    @property
    def index(self) -> int:
        return self.index0 + 1

    @property
    def first(self) -> bool:
        return self.index0 == 0

    @property
    def last(self) -> bool:
        return self.index0 == self.length - 1

    @property
    def revindex(self) -> int:
        return self.length - self.index0

    @property
    def revindex0(self) -> int:
        return self.length - self.index0 - 1
