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


def test_unknown_ref_suggests_the_closest_name(built, capsys):
    before = _snapshot(built)
    (built / "sql/marts/customers.sql").write_text("select * from {{ ref('stg_customer') }}")
    result = run(capsys, built, "build")
    _fails_cleanly(result, 2)
    assert "sql/marts/customers.sql" in result.err and "ref('stg_customer')" in result.err
    assert "Did you mean 'stg_customers'" in result.err
    assert _snapshot(built) == before


def test_unknown_source(built, capsys):
    (built / "sql/staging/stg_customers.sql").write_text("select * from {{ source('shop', 'raw_customer') }}")
    result = run(capsys, built, "build")
    _fails_cleanly(result, 2)
    assert "sql/staging/stg_customers.sql" in result.err and "shop.raw_customers" in result.err


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


def test_jinja_syntax_error_names_file_and_line(built, capsys):
    before = _snapshot(built)
    (built / "sql/marts/customers.sql").write_text(
        "select 1 as a\n{% if true %}\nfrom x\n{% endfi %}\n")
    result = run(capsys, built, "build")
    _fails_cleanly(result, 1)
    assert "sql/marts/customers.sql:4" in result.out and "Jinja syntax error" in result.out
    assert _snapshot(built) == before


def test_jinja_syntax_error_in_a_macro(built, capsys):
    (built / "sql/macros/money.sql").write_text("{% macro cents_to_dollars(col) %}\n{{ col }\n{% endmacro %}")
    result = run(capsys, built, "build")
    assert result.code in (1, 2)
    assert TRACEBACK not in result.text
    assert "sql/macros/money.sql:2" in result.text and "Jinja syntax error" in result.text


def test_jinja_runtime_error_names_file(built, capsys):
    (built / "sql/marts/customers.sql").write_text("select 1 as a\n-- {{ undefined_thing }}\n{% if true %}{% endif %}")
    result = run(capsys, built, "build")
    _fails_cleanly(result, 1)
    assert "sql/marts/customers.sql:2" in result.out and "undefined_thing" in result.out


def test_unset_var_without_default(built, capsys):
    (built / "sql/marts/customers.sql").write_text("select {{ var('not_there') }} as a")
    result = run(capsys, built, "build")
    assert result.code in (1, 2) and TRACEBACK not in result.text
    assert "sql/marts/customers.sql" in result.text and "var('not_there')" in result.text


def test_yaml_syntax_error_names_file_and_line(built, capsys):
    before = _snapshot(built)
    (built / "models/schema.yml").write_text("version: 2\nmodels:\n  - name: customers\n    columns: [a\n  - b: c\n")
    result = run(capsys, built, "build")
    _fails_cleanly(result, 2)
    assert "models/schema.yml:" in result.err and "YAML syntax error" in result.err
    line = int(result.err.split("models/schema.yml:", 1)[1].split(":", 1)[0])
    assert 4 <= line <= 5
    assert _snapshot(built) == before


def test_project_yml_syntax_error(built, capsys):
    (built / "project.yml").write_text("name: jaffle\nmodels:\n  staging: {+schema: staging\n")
    result = run(capsys, built, "build")
    _fails_cleanly(result, 2)
    assert "project.yml:" in result.err and "YAML syntax error" in result.err


def test_sql_error_names_model_compiled_path_and_duckdb_message(built, capsys):
    before = _snapshot(built)
    (built / "sql/marts/customers.sql").write_text("select customer_id, no_such_column from {{ ref('stg_customers') }}")
    result = run(capsys, built, "build")
    _fails_cleanly(result, 1)
    assert '"marts"."customers"' in result.out
    assert "target/compiled/sql/marts/customers.sql" in result.out
    assert "no_such_column" in result.out and "Binder Error" in result.out
    assert "SKIP" in result.out and "customer_summary" in result.out
    assert _snapshot(built) == before


def test_duplicate_model_name(built, capsys):
    (built / "python_models/customers.py").write_text("def model(dbt, session):\n    return dbt.ref('orders')\n")
    result = run(capsys, built, "build")
    _fails_cleanly(result, 2)
    assert "duplicate model name 'customers'" in result.err
    assert "sql/marts/customers.sql" in result.err and "python_models/customers.py" in result.err


def test_model_named_like_a_seed(built, capsys):
    (built / "sql/raw_orders.sql").write_text("select 1 as a")
    result = run(capsys, built, "build")
    _fails_cleanly(result, 2)
    assert "raw_orders" in result.err and "seed" in result.err


def test_bad_materialization(built, capsys):
    (built / "sql/marts/customers.sql").write_text("{{ config(materialized='tabel') }}\nselect 1 as a")
    result = run(capsys, built, "build")
    _fails_cleanly(result, 2)
    assert "sql/marts/customers.sql" in result.err and "'tabel'" in result.err and "'table'" in result.err


def test_bad_materialization_in_project_yml(built, capsys):
    text = (built / "project.yml").read_text().replace("+materialized: table", "+materialized: tables")
    (built / "project.yml").write_text(text)
    result = run(capsys, built, "build")
    _fails_cleanly(result, 2)
    assert "project.yml" in result.err and "'tables'" in result.err


def test_python_model_cannot_be_a_view(built, capsys):
    (built / "python_models/customer_summary.py").write_text(
        "def model(dbt, session):\n    dbt.config(materialized='view')\n    return dbt.ref('customers')\n")
    result = run(capsys, built, "build")
    _fails_cleanly(result, 2)
    assert "customer_summary" in result.err and "'view'" in result.err


def test_properties_for_a_missing_model(built, capsys):
    (built / "models/extra.yml").write_text("version: 2\nmodels:\n  - name: custmers\n    description: x\n")
    result = run(capsys, built, "build")
    _fails_cleanly(result, 2)
    assert "models/extra.yml:3" in result.err and "Did you mean 'customers'" in result.err


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
