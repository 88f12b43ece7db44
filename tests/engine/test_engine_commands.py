"""The commands a dbt user types next: parse, debug, retry, run-operation, --empty, show -s,
Jinja in --inline, -x and --threads."""
from __future__ import annotations

import json

import pytest

from engine_fixtures import JAFFLE, TRACEBACK, built_copy, query, run, warehouse, write_project


@pytest.fixture
def jaffle(tmp_path):
    return write_project(tmp_path, JAFFLE)


@pytest.fixture
def built(tmp_path, tmp_path_factory):
    return built_copy(tmp_path / "project", JAFFLE, tmp_path_factory.getbasetemp())


def test_parse_writes_the_manifest_without_touching_the_warehouse(jaffle, capsys):
    result = run(capsys, jaffle, "parse")
    assert result.code == 0, result
    assert "parsed 8 models, 3 seeds, 8 tests, 1 sources" in result.out
    assert "model.jaffle.orders" in json.loads((jaffle / "target/manifest.json").read_text())["nodes"]
    assert not warehouse(jaffle).exists()


def test_debug_checks_the_project_and_the_warehouse(built, capsys):
    result = run(capsys, built, "debug")
    assert result.code == 0, result
    assert "connection: ok" in result.out and "All checks passed!" in result.out
    (built / "sql/marts/customers.sql").write_text("select * from {{ ref('nope') }}")
    result = run(capsys, built, "debug")
    assert result.code == 1 and "ref('nope')" in result.out and "Some checks failed." in result.out


def test_retry_reruns_what_failed_or_was_skipped(jaffle, capsys):
    good = (jaffle / "sql/staging/stg_payments.sql").read_text()
    (jaffle / "sql/staging/stg_payments.sql").write_text("select nonsense from {{ ref('raw_payments') }}")
    assert run(capsys, jaffle, "build", "--publish-partial").code == 1
    (jaffle / "sql/staging/stg_payments.sql").write_text(good)
    result = run(capsys, jaffle, "retry")
    assert result.code == 0, result
    assert "stg_payments" in result.out and "raw_orders" not in result.out  # only what did not succeed
    assert query(warehouse(jaffle), "select count(*) from marts.customers") == [(3,)]
    assert "Nothing to retry" in run(capsys, jaffle, "retry").out


def test_retry_after_an_all_or_nothing_failure_reruns_the_whole_run(jaffle, capsys):
    good = (jaffle / "sql/staging/stg_payments.sql").read_text()
    (jaffle / "sql/staging/stg_payments.sql").write_text("select nonsense from {{ ref('raw_payments') }}")
    assert run(capsys, jaffle, "build").code == 1  # nothing published, raw_orders included
    (jaffle / "sql/staging/stg_payments.sql").write_text(good)
    result = run(capsys, jaffle, "retry")
    assert result.code == 0, result
    assert "stg_payments" in result.out and "raw_orders" in result.out
    assert query(warehouse(jaffle), "select count(*) from marts.customers") == [(3,)]


def test_retry_without_a_previous_run_says_so(jaffle, capsys):
    result = run(capsys, jaffle, "retry")
    assert result.code == 2 and "no target/run_results.json yet" in result.err


def test_run_operation_calls_a_macro_and_publishes_its_sql(built, capsys):
    (built / "sql/macros/ops.sql").write_text(
        "{% macro snapshot_customers(suffix) %}\n"
        "{% set n = run_query('select count(*) from ' ~ ref('customers')) %}\n"
        "{% do log('customers: ' ~ n.rows[0][0], info=true) %}\n"
        "create table main.customers_{{ suffix }} as select * from {{ ref('customers') }}\n"
        "{% endmacro %}\n")
    result = run(capsys, built, "run-operation", "snapshot_customers", "--args", "{suffix: copy}")
    assert result.code == 0, result
    assert "customers: 3" in result.out
    assert query(warehouse(built), "select count(*) from main.customers_copy") == [(3,)]
    missing = run(capsys, built, "run-operation", "snapshot_customer")
    assert missing.code == 2 and "Did you mean 'snapshot_customers'" in missing.err
    assert TRACEBACK not in missing.text


def test_empty_builds_every_model_from_zero_rows(jaffle, capsys):
    result = run(capsys, jaffle, "build", "--empty")
    assert result.code == 0, result
    wh = warehouse(jaffle)
    assert query(wh, "select count(*) from raw.raw_orders") == [(4,)]  # seeds load as they are
    assert query(wh, "select count(*) from marts.orders") == [(0,)]
    assert query(wh, "select count(*) from main.customer_summary") == [(0,)]  # Python models too
    cols = query(wh, "select column_name from information_schema.columns where table_name = 'customers' "
                     "order by ordinal_position")
    assert [c for (c,) in cols] == ["customer_id", "first_name", "n_orders", "lifetime_value"]


def test_show_select_and_jinja_in_inline_sql(built, capsys):
    shown = run(capsys, built, "show", "-s", "customers", "--format", "csv")
    assert shown.code == 0 and "Kathleen" in shown.out
    inline = run(capsys, built, "show", "--inline", "select count(*) as n from {{ ref('orders') }}",
                 "--format", "json")
    assert inline.code == 0, inline
    assert json.loads(inline.out) == [{"n": 4}]
    compiled = run(capsys, built, "compile", "--inline", "select {{ cents_to_dollars('amount') }} from {{ ref('orders') }}")
    assert compiled.code == 0, compiled
    assert compiled.out.strip() == 'select (amount / 100)::decimal(16, 2) from "marts"."orders"'


def test_fail_fast_short_flag_and_threads(jaffle, capsys):
    (jaffle / "sql/staging/stg_customers.sql").write_text("select nonsense")
    result = run(capsys, jaffle, "build", "-x", "--threads", "1")
    assert result.code == 1
    assert "skipped: --fail-fast after an error" in result.out
