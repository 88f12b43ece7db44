"""Dependencies the engine cannot miss: refs made inside macros, macros calling macros, config()
in every Jinja form, and one resolver for ref/source/var."""
import json

import jinja2

from engine_fixtures import TRACEBACK, project, query, run, warehouse

BASE = {
    "project.yml": """
        name: deps
        models: {+materialized: table}
    """,
    "sql/z_src.sql": "select {{ var('v', 1) }} as v",
    "sql/macros/read.sql": """
        {% macro read_src() %}
        select v from {{ ref('z_src') }}
        {% endmacro %}
    """,
}


def test_a_ref_made_only_in_a_macro_orders_the_build_and_never_reads_a_stale_table(tmp_path, capsys):
    # a_dep sorts before z_src and names it only through a macro
    root = project(tmp_path, {"sql/a_dep.sql": "{{ read_src() }}"}, base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 0, result
    assert result.out.index("z_src") < result.out.index("a_dep")
    assert query(warehouse(root), "select v from main.a_dep") == [(1,)]
    result = run(capsys, root, "build", "--vars", "{v: 2}")
    assert result.code == 0, result
    assert query(warehouse(root), "select v from main.a_dep") == [(2,)]
    listed = run(capsys, root, "ls", "-s", "a_dep", "--output", "json")
    assert json.loads(listed.out.splitlines()[0])["depends_on"] == ["model.z_src"]


def test_a_ref_parsing_could_not_see_fails_the_model_naming_both_nodes(tmp_path, capsys):
    # the macro's ref happens only when is_incremental(): parsing (not incremental) misses it
    root = project(tmp_path, {
        "sql/a_dep.sql": """
            {{ config(materialized='incremental') }}
            select 0 as v
            {% if is_incremental() %} union all {{ read_src() }} {% endif %}
        """,
    }, base=BASE)
    assert run(capsys, root, "build").code == 0
    result = run(capsys, root, "build", "--vars", "{v: 2}", "--publish-partial")
    assert result.code == 1, result
    message = result.out.split("model a_dep (")[1]
    assert "a_dep calls ref('z_src')" in message and "z_src is not among the dependencies of a_dep" in message
    assert "sql/macros/read.sql:2" in message and TRACEBACK not in result.out
    assert query(warehouse(root), "select v from main.a_dep") == [(0,)]  # untouched, never a stale read
    assert query(warehouse(root), "select v from main.z_src") == [(2,)]  # the rest was built


def test_a_macro_calls_a_macro_of_any_file_whatever_the_file_order(tmp_path, capsys):
    root = project(tmp_path, {
        "sql/macros/a_outer.sql": "{% macro outer(x) %}({{ inner(x) }} + 1){% endmacro %}",
        "sql/macros/m_middle.sql": "{% macro twice(x) %}{{ outer(x) }} * 2{% endmacro %}",
        "sql/macros/z_inner.sql": "{% macro inner(x) %}{{ x }} * 10{% endmacro %}",
        "sql/calc.sql": "select {{ outer(3) }} as a, {{ twice(1) }} as b",
    }, base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 0, result
    assert query(warehouse(root), "select a, b from main.calc") == [(31, 22)]


def test_an_error_inside_a_macro_names_the_macro_file_and_line(tmp_path, capsys):
    root = project(tmp_path, {
        "sql/macros/broken.sql": """
            {% macro fine() %}1{% endmacro %}
            {% macro broken() %}
            select {{ ref('no_such_model') }}
            {% endmacro %}
            {% macro undefined_name() %}
            select {{ not_defined.attribute }}
            {% endmacro %}
        """,
        "sql/uses_ref.sql": "-- a comment\n{{ broken() }}",
        "sql/uses_name.sql": "{{ undefined_name() }}",
    }, base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 1
    ref_error = result.out.split("model uses_ref (")[1]
    assert ref_error.split("\n")[1].strip().startswith("sql/macros/broken.sql:3: ref('no_such_model')")
    assert "called from sql/uses_ref.sql:2" in ref_error
    name_error = result.out.split("model uses_name (")[1]
    assert "sql/macros/broken.sql:6: Jinja error in uses_name" in name_error and "not_defined" in name_error
    assert TRACEBACK not in result.out


def test_every_jinja_form_of_config_is_honoured(tmp_path, capsys):
    root = project(tmp_path, {
        "project.yml": "name: deps\nvars: {mat: table}\n",
        "sql/trimmed.sql": "{{- config(materialized='table') -}}\nselect 1 as x",
        "sql/do_call.sql": "{% do config(materialized='table') %}\nselect 1 as x",
        "sql/from_var.sql": "{{ config(materialized=var('mat')) }}\nselect 1 as x",
        "sql/as_dict.sql": "{{ config({'materialized': 'table', 'schema': 'marts'}) }}\nselect 1 as x",
        "sql/plain_view.sql": "select 1 as x",
    }, base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 0, result
    rows = query(warehouse(root), "select schema_name, table_name from duckdb_tables() where table_name in "
                                  "('trimmed', 'do_call', 'from_var', 'as_dict', 'plain_view') order by 2")
    assert rows == [("marts", "as_dict"), ("main", "do_call"), ("main", "from_var"), ("main", "trimmed")]
    assert query(warehouse(root), "select count(*) from duckdb_views() where view_name = 'plain_view'") == [(1,)]


def test_the_fast_renderer_trims_whitespace_and_drops_comments_as_jinja_does(tmp_path, capsys):
    code = ("{#- header comment -#}\nselect\n    1 as x,   {{- var('v') }} as y,\n"
            "    {{ var('v') -}}   \n as z {# trailing #}\n")
    root = project(tmp_path, {"project.yml": "name: deps\nvars: {v: 7}\n", "sql/m.sql": code})
    assert run(capsys, root, "compile").code == 0
    compiled = (root / "target/compiled/sql/m.sql").read_text()
    expected = jinja2.Template(code, keep_trailing_newline=True).render(var=lambda name: 7)
    assert compiled == expected


def test_two_argument_ref_works_in_sql_python_and_relationships_tests(tmp_path, capsys):
    root = project(tmp_path, {
        "sql/parent.sql": "select 1 as id",
        "sql/child.sql": "select id from {{ ref('deps', 'parent') }}",
        "python_models/py_child.py": """
            def model(dbt, session):
                return dbt.ref("deps", "child")
        """,
        "models/props.yml": """
            version: 2
            models:
              - name: child
                columns:
                  - name: id
                    data_tests:
                      - relationships: {to: "ref('deps', 'parent')", field: id}
        """,
        "sql/other_package.sql": "select * from {{ ref('dbt_utils', 'parent') }}",
    }, base=BASE)
    result = run(capsys, root, "build", "--publish-partial")
    assert result.code == 1, result
    assert "PASS  test relationships_child_id" in result.out
    assert query(warehouse(root), "select id from main.py_child") == [(1,)]
    assert "'dbt_utils' is not this project ('deps')" in result.out


def test_python_models_resolve_like_sql_models(tmp_path, capsys):
    root = project(tmp_path, {
        "python_models/py_bad.py": """
            def model(dbt, session):
                return dbt.ref("z_scr")
        """,
    }, base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 2
    assert "ref('z_scr')" in result.err and "Did you mean 'z_src'" in result.err


def test_a_ref_built_in_a_loop_of_the_model_is_a_dependency(tmp_path, capsys):
    root = project(tmp_path, {
        "sql/a_loop.sql": "{% for m in ['z_src'] %}select v from {{ ref(m) }}{% endfor %}",
        "sql/a_plain.sql": "-- no Jinja needed: {{ ref('z_src') }} is literal\nselect v from {{ ref('z_src') }}",
    }, base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 0, result
    assert query(warehouse(root), "select v from main.a_loop") == [(1,)]
    listed = run(capsys, root, "ls", "-s", "+a_loop", "--resource-type", "model")
    assert listed.out.split() == ["main.z_src", "main.a_loop"]
