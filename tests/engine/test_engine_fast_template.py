"""The Jinja subset duckrec renders itself must render exactly as Jinja does."""
from __future__ import annotations

import random
from pathlib import Path

import jinja2
import pytest

from duckrec.render import fast_template

ROOT = Path(__file__).resolve().parents[2]


def _jinja(code: str, ctx: dict) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"])
    return env.from_string(code).render(ctx)


def _ctx(incremental: bool) -> dict:
    return {"ref": lambda name: f'"main"."{name}"', "config": lambda **_: "", "is_incremental": lambda: incremental,
            "this": '"marts"."orders"', "flag": True}


def _fast(code: str, ctx: dict) -> str | None:
    def call(expr: str):
        try:
            return eval(expr, {}, ctx)  # the test's stand-in for the renderer's simple calls
        except Exception:  # noqa: BLE001 - what eval cannot do is the renderer's
            return fast_template.MISSING
    return fast_template.render(code, {"this": ctx["this"], "flag": ctx["flag"]}, call)


JAFFLE_ORDERS = (ROOT / "tests" / "dbt_jaffle_shop" / "models" / "orders.sql").read_text()

CASES = [
    JAFFLE_ORDERS,
    "{% set xs = [1, 2, 3] %}\nselect\n{%- for x in xs %}\n  {{ x }} as c{{ loop.index }}{% if not loop.last %},"
    "{% endif %}\n{%- endfor %}\nfrom t\n",
    "{%- if is_incremental() -%}\n a \n{%- elif flag -%} b {% else %} c {%- endif %}\n",
    "{% for a in ['x', 'y'] %}{% for b in (1, 2) %}{{ a }}{{ b }}{{ loop.first }}{% endfor %}{{ loop.length }}"
    "{{ loop.revindex0 }}{% endfor %}",
    "{# c #}  {%- set t = 'q' -%}  {{ t }}  {#- c2 -#}  end\n\n",
    "{% for x in [] %}a{% endfor %}b",
    "{% if flag %}{% set y = 1.5 %}{% endif %}{{ y }} {{ this }} {{ ref('stg_orders') }}",
    "select {% for c in ['a', 'b'] %}{% set alias = c %}{{ alias }}{% if not loop.last %}, {% endif %}{% endfor %}",
]


@pytest.mark.parametrize("incremental", [False, True])
@pytest.mark.parametrize("code", CASES)
def test_renders_as_jinja(code: str, incremental: bool) -> None:
    ctx = _ctx(incremental)
    out = _fast(code, ctx)
    assert out is not None, "the subset should handle this template"
    assert out == _jinja(code, ctx)


@pytest.mark.parametrize("code", [
    "{% for x in xs if x %}{{ x }}{% endfor %}",          # loop filter
    "{% for x in [1] %}{{ x }}{% else %}none{% endfor %}",  # for-else
    "{{ xs | join(', ') }}",                              # filter
    "{% macro m() %}x{% endmacro %}{{ m() }}",            # macro
    "{% set x = true %}{{ x }}",                          # Jinja's true, Python's True
    "{{ undefined_name }}",                               # Jinja names it (StrictUndefined)
    "{% for x in [1] %}{{ x }}",                          # an unclosed block: Jinja reports it
    "{% if flag %}a{% endfor %}",                         # mismatched end
    "{{ [1, 2] }}",                                       # a list's text
    "{% raw %}{{ x }}{% endraw %}",
    "a\r\nb{% set x = 1 %}",
])
def test_leaves_the_rest_to_jinja(code: str) -> None:
    assert _fast(code, _ctx(False)) is None


def _random_template(rng: random.Random, depth: int = 0, loop_vars: tuple[str, ...] = ()) -> str:
    ws = ["", " ", "\n", "  \n  ", "\n\n", "\t"]

    def dash() -> str:
        return rng.choice(["", "-"])

    parts = []
    for _ in range(rng.randint(1, 5)):
        kind = rng.choice(["text", "text", "expr", "comment", "set", "for", "if"] if depth < 3 else ["text", "expr"])
        if kind == "text":
            parts.append(rng.choice(ws) + rng.choice(["select", "a,", "b", "from t", ""]) + rng.choice(ws))
        elif kind == "expr":
            choices = ["this", "s"] + list(loop_vars) + (["loop.index", "loop.last", "loop.revindex"] if loop_vars else [])
            parts.append("{{" + dash() + " " + rng.choice(choices) + " " + dash() + "}}")
        elif kind == "comment":
            parts.append("{#" + dash() + " note " + dash() + "#}")
        elif kind == "set":
            parts.append("{%" + dash() + " set s = " + rng.choice(["'v'", "3", "[1, 2]"]) + " " + dash() + "%}")
        elif kind == "for":
            var = f"v{depth}"
            seq = rng.choice(["['p', 'q', 'r']", "[]", "(1,)", "[1, 2]"])
            parts.append("{%" + dash() + f" for {var} in {seq} " + dash() + "%}"
                         + _random_template(rng, depth + 1, loop_vars + (var,))
                         + "{%" + dash() + " endfor " + dash() + "%}")
        else:
            conds = ["flag", "not flag", "is_incremental()", "not is_incremental()"] + (
                ["loop.first", "not loop.last"] if loop_vars else [])
            block = "{%" + dash() + f" if {rng.choice(conds)} " + dash() + "%}" + _random_template(rng, depth + 1,
                                                                                                      loop_vars)
            if rng.random() < 0.4:
                block += "{%" + dash() + f" elif {rng.choice(conds)} " + dash() + "%}" + _random_template(
                    rng, depth + 1, loop_vars)
            if rng.random() < 0.5:
                block += "{%" + dash() + " else " + dash() + "%}" + _random_template(rng, depth + 1, loop_vars)
            parts.append(block + "{%" + dash() + " endif " + dash() + "%}")
    return "".join(parts) + rng.choice(["", "\n", "\n\n"])


def test_random_templates_render_as_jinja() -> None:
    rng = random.Random(7)
    rendered = 0
    for i in range(600):
        code = "{% set s = 'x' %}" + _random_template(rng)
        ctx = _ctx(i % 2 == 0)
        ctx["s"] = "x"
        out = _fast(code, ctx)
        try:
            expected = _jinja(code, ctx)
        except jinja2.UndefinedError:
            assert out is None, code  # a name a branch never set: Jinja reports it
            continue
        if out is None:
            continue
        rendered += 1
        assert out == expected, code
    assert rendered > 400  # the subset covers what the generator writes


def test_dbt_jaffle_renders_without_jinja(tmp_path: Path, monkeypatch) -> None:
    """The real jaffle_shop's set/for payment columns and its macro call cost no Jinja render."""
    import shutil

    from duckrec.render import renderer as render
    from duckrec.cli import main

    project = tmp_path / "jaffle"
    shutil.copytree(ROOT / "tests" / "dbt_jaffle_shop", project)
    seen: list[str] = []
    original = render.Renderer._render_jinja

    def spy(self, node, ctx):
        seen.append(node.name)
        return original(self, node, ctx)

    monkeypatch.setattr(render.Renderer, "_render_jinja", spy)
    assert main(["build", "--project-dir", str(project)]) == 0
    assert seen == []  # stg_payments calls the project's cents_to_dollars() macro
    sql = next(f for f in (project / "target" / "compiled").rglob("orders.sql") if "models" in str(f)).read_text()
    assert "sum(case when payment_method = 'gift_card' then amount else 0 end) as gift_card_amount," in sql


MACROS = """{% macro cents_to_dollars(column_name, scale=2) -%}
    ({{ column_name }} / 100)::numeric(16, {{ scale }})
{%- endmacro %}

{# a comment between macros #}
{% macro cols(names, prefix='p_') %}{% for n in names %}{{ prefix }}{{ n }}{% if not loop.last %}, {% endif %}{% endfor %}{% endmacro %}
{% macro wrap(x) %}[{{ cents_to_dollars(x) }}]{% endmacro %}
"""


@pytest.mark.parametrize("code", [
    "select {{ cents_to_dollars('amount') }} as a, {{ cents_to_dollars('b', scale=4) }} from t\n",
    "{% set xs = ['a', 'b'] %}select {{ cols(xs) }}, {{ cols(['c'], prefix='q_') }}, {{ wrap('z') }}",
    "{% for c in ['x', 'y'] %}{{ cents_to_dollars(c) }}{% endfor %}",
])
def test_macros_render_as_jinja(code: str) -> None:
    macros = fast_template.parse_macros(MACROS)
    assert macros is not None and set(macros) == {"cents_to_dollars", "cols", "wrap"}
    ctx = _ctx(False)
    out = fast_template.render(code, {"this": ctx["this"]}, lambda e: fast_template.MISSING, macros)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    module = env.from_string(MACROS).make_module()
    expected = env.from_string(code).render({n: getattr(module, n) for n in macros})
    assert out == expected


@pytest.mark.parametrize("text", [
    "{% macro m() %}x{% endmacro %} stray text",            # text outside the macros
    "{% set x = 1 %}{% macro m() %}{{ x }}{% endmacro %}",   # a module-level name
    "{% macro m(*args) %}x{% endmacro %}",
    "{% macro m() %}{{ caller() }}{% endmacro %}",           # parses, but caller() needs Jinja
])
def test_macro_files_beyond_the_subset(text: str) -> None:
    macros = fast_template.parse_macros(text)
    if macros is not None:
        assert fast_template.render("{{ m() }}", {}, lambda e: fast_template.MISSING, macros) is None


def test_too_many_macro_arguments_go_to_jinja() -> None:
    macros = fast_template.parse_macros(MACROS)
    assert fast_template.render("{{ wrap('a', 'b') }}", {}, lambda e: fast_template.MISSING, macros) is None
    assert fast_template.render("{{ wrap(nope='a') }}", {}, lambda e: fast_template.MISSING, macros) is None

