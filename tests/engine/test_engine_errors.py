"""Clear errors: each names the file/line or model, exits non-zero, never a bare traceback,
and never damages what the last build published."""
from __future__ import annotations

import pytest

from engine_fixtures import JAFFLE, TRACEBACK, built_copy, query, run, warehouse


@pytest.fixture
def built(tmp_path, tmp_path_factory):
    """The jaffle project, already built once (built once per session, copied per test)."""
    return built_copy(tmp_path / "project", JAFFLE, tmp_path_factory.getbasetemp())


def _snapshot(root) -> dict[str, list[tuple]]:
    wh = warehouse(root)
    return {t: query(wh, f"select * from {t} order by all") for t in
            ("marts.customers", "marts.orders", "marts.orders_log", "staging.stg_orders", "main.customer_summary")}


def _fails_cleanly(result, code: int) -> None:
    assert result.code == code, result
    assert TRACEBACK not in result.text


# One broken file each: (file, its new text or (old, new) to edit it, command, exit codes,
# output stream, what the message must name, whether the published tables are checked).
CLEAN_ERRORS = [
    pytest.param("sql/marts/customers.sql", "select * from {{ ref('stg_customer') }}", "build", (2,), "err",
                 ["sql/marts/customers.sql", "ref('stg_customer')", "Did you mean 'stg_customers'"], True,
                 id="unknown_ref_suggests_the_closest_name"),
    pytest.param("sql/staging/stg_customers.sql", "select * from {{ source('shop', 'raw_customer') }}", "build",
                 (2,), "err", ["sql/staging/stg_customers.sql", "shop.raw_customers"], False, id="unknown_source"),
    pytest.param("sql/marts/customers.sql", "select 1 as a\n{% if true %}\nfrom x\n{% endfi %}\n", "build", (1,),
                 "out", ["sql/marts/customers.sql:4", "Jinja syntax error"], True,
                 id="jinja_syntax_error_names_file_and_line"),
    pytest.param("sql/macros/money.sql", "{% macro cents_to_dollars(col) %}\n{{ col }\n{% endmacro %}", "build",
                 (1, 2), "text", ["sql/macros/money.sql:2", "Jinja syntax error"], False,
                 id="jinja_syntax_error_in_a_macro"),
    pytest.param("sql/marts/customers.sql", "select 1 as a\n-- {{ undefined_thing }}\n{% if true %}{% endif %}",
                 "build", (1,), "out", ["sql/marts/customers.sql:2", "undefined_thing"], False,
                 id="jinja_runtime_error_names_file"),
    pytest.param("sql/marts/customers.sql", "select {{ var('not_there') }} as a", "build", (1, 2), "text",
                 ["sql/marts/customers.sql", "var('not_there')"], False, id="unset_var_without_default"),
    pytest.param("project.yml", "name: jaffle\nmodels:\n  staging: {+schema: staging\n", "build", (2,), "err",
                 ["project.yml:", "YAML syntax error"], False, id="project_yml_syntax_error"),
    pytest.param("sql/marts/customers.sql", "select customer_id, no_such_column from {{ ref('stg_customers') }}",
                 "build", (1,), "out", ['"marts"."customers"', "target/compiled/sql/marts/customers.sql",
                                        "no_such_column", "Binder Error", "SKIP", "customer_summary"], True,
                 id="sql_error_names_model_compiled_path_and_duckdb_message"),
    pytest.param("python_models/customers.py", "def model(dbt, session):\n    return dbt.ref('orders')\n", "build",
                 (2,), "err", ["duplicate model name 'customers'", "sql/marts/customers.sql",
                               "python_models/customers.py"], False, id="duplicate_model_name"),
    pytest.param("sql/raw_orders.sql", "select 1 as a", "build", (2,), "err", ["raw_orders", "seed"], False,
                 id="model_named_like_a_seed"),
    pytest.param("sql/marts/customers.sql", "{{ config(materialized='tabel') }}\nselect 1 as a", "build", (2,),
                 "err", ["sql/marts/customers.sql", "'tabel'", "'table'"], False, id="bad_materialization"),
    pytest.param("project.yml", ("+materialized: table", "+materialized: tables"), "build", (2,), "err",
                 ["project.yml", "'tables'"], False, id="bad_materialization_in_project_yml"),
    pytest.param("python_models/customer_summary.py",
                 "def model(dbt, session):\n    dbt.config(materialized='view')\n    return dbt.ref('customers')\n",
                 "build", (2,), "err", ["customer_summary", "'view'"], False, id="python_model_cannot_be_a_view"),
    pytest.param("models/extra.yml", "version: 2\nmodels:\n  - name: custmers\n    description: x\n", "build", (2,),
                 "err", ["models/extra.yml:3", "Did you mean 'customers'"], False,
                 id="properties_for_a_missing_model"),
]


@pytest.mark.parametrize("path, text, command, codes, stream, expected, keeps_published", CLEAN_ERRORS)
def test_error_names_what_is_wrong(built, capsys, path, text, command, codes, stream, expected, keeps_published):
    before = _snapshot(built) if keeps_published else None
    if isinstance(text, tuple):
        text = (built / path).read_text().replace(*text)
    (built / path).write_text(text)
    result = run(capsys, built, command)
    assert result.code in codes, result
    assert TRACEBACK not in result.text
    message = getattr(result, stream)
    for part in expected:
        assert part in message, (part, message)
    if keeps_published:
        assert _snapshot(built) == before


def test_cycle_is_printed(built, capsys):
    before = _snapshot(built)
    (built / "sql/staging/stg_customers.sql").write_text("select * from {{ ref('customers') }}")
    result = run(capsys, built, "build")
    _fails_cleanly(result, 2)
    assert "dependency cycle" in result.err
    cycle = result.err.split("dependency cycle:", 1)[1].strip()
    assert "customers -> stg_customers -> customers" in cycle or "stg_customers -> customers -> stg_customers" in cycle
    assert _snapshot(built) == before
    assert run(capsys, built, "ls").code == 2


def test_yaml_syntax_error_names_file_and_line(built, capsys):
    before = _snapshot(built)
    (built / "models/schema.yml").write_text("version: 2\nmodels:\n  - name: customers\n    columns: [a\n  - b: c\n")
    result = run(capsys, built, "build")
    _fails_cleanly(result, 2)
    assert "models/schema.yml:" in result.err and "YAML syntax error" in result.err
    line = int(result.err.split("models/schema.yml:", 1)[1].split(":", 1)[0])
    assert 4 <= line <= 5
    assert _snapshot(built) == before


def test_python_model_syntax_error(built, capsys):
    (built / "python_models/customer_summary.py").write_text("def model(dbt, session):\n    return (\n")
    result = run(capsys, built, "ls")
    _fails_cleanly(result, 2)
    assert "python_models/customer_summary.py:" in result.err and "syntax error" in result.err.lower()


def test_failed_build_keeps_every_published_table(built, capsys):
    before = _snapshot(built)
    (built / "seeds/raw_orders.csv").write_text("id,user_id ,order_date,status ,amount\n1,1,not-a-date,placed,1\n")
    result = run(capsys, built, "build")
    _fails_cleanly(result, 1)
    assert "column order_date" in result.out
    # the next seed is still processed (reused: its file did not change)
    assert 'REUSE seed "raw"."raw_payments"' in result.out
    assert _snapshot(built) == before
