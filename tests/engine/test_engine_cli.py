"""Commands and flags: build/run/test/seed/compile/ls/show/clean, selection, logs, targets."""
from __future__ import annotations

import csv
import io
import json

import pytest

from engine_fixtures import JAFFLE, TRACEBACK, built_copy, query, run, warehouse, write_project


@pytest.fixture
def jaffle(tmp_path):
    return write_project(tmp_path, JAFFLE)


@pytest.fixture
def built(tmp_path, tmp_path_factory):
    """The jaffle project, already built once (built once per session, copied per test)."""
    return built_copy(tmp_path / "project", JAFFLE, tmp_path_factory.getbasetemp())


def _ls(capsys, root, *args) -> list[str]:
    result = run(capsys, root, "ls", *args)
    assert result.code == 0, result
    return result.out.split()


def _built_relations(root) -> set[str]:
    return {r[0] for r in query(warehouse(root), "select table_schema || '.' || table_name from information_schema.tables "
                                                 "where table_schema not in ('_duckrec')")}


# ----------------------------------------------------------------- selection


def test_select_by_name_and_graph_operators(jaffle, capsys):
    assert _ls(capsys, jaffle, "-s", "orders", "--resource-type", "model") == ["marts.orders"]
    assert _ls(capsys, jaffle, "-s", "+orders", "--resource-type", "model", "--resource-type", "seed") == [
        "raw.raw_orders", "raw.raw_payments", "staging.stg_orders", "staging.stg_payments", "marts.order_payments",
        "marts.orders"]
    assert _ls(capsys, jaffle, "-s", "orders+", "--resource-type", "model") == [
        "marts.orders", "marts.customers", "main.customer_summary"]
    # a test comes along when everything it tests is selected
    assert "unique_customers_customer_id" in _ls(capsys, jaffle, "-s", "customers")


def test_select_by_tag_path_and_exclude(jaffle, capsys):
    assert _ls(capsys, jaffle, "-s", "tag:inc") == ["marts.orders_log", "unique_orders_log_order_id"]
    assert _ls(capsys, jaffle, "-s", "path:sql/staging", "--resource-type", "model") == [
        "staging.stg_customers", "staging.stg_orders", "staging.stg_payments"]
    assert _ls(capsys, jaffle, "-s", "tag:staging", "--exclude", "stg_payments", "--resource-type", "model") == [
        "staging.stg_customers", "staging.stg_orders"]
    assert _ls(capsys, jaffle, "-s", "tag:marts", "--exclude", "tag:inc", "orders+", "--resource-type", "model") == [
        "marts.order_payments"]


def test_a_selector_matching_nothing_warns_suggests_the_closest_name_and_exits_0(jaffle, capsys):
    # dbt's rule: a warning, nothing to do, exit 0
    for cmd in ("build", "ls"):
        result = run(capsys, jaffle, cmd, "-s", "custmers")
        assert result.code == 0
        assert "warning: --select custmers" in result.text and "Did you mean 'customers'" in result.text
        assert TRACEBACK not in result.text
    result = run(capsys, jaffle, "build", "-s", "tag:stagign")
    assert result.code == 0 and "'staging'" in result.text and "Nothing to do" in result.out
    assert not warehouse(jaffle).exists()
    # one term matching nothing does not stop the others
    result = run(capsys, jaffle, "build", "-s", "custmers", "raw_orders")
    assert result.code == 0 and "warning: --select custmers" in result.out
    assert query(warehouse(jaffle), "select count(*) from raw.raw_orders") == [(4,)]


def test_build_with_selection_builds_only_that(jaffle, capsys):
    result = run(capsys, jaffle, "build", "-s", "+stg_orders", "+stg_customers")
    assert result.code == 0, result
    assert _built_relations(jaffle) == {"raw.raw_customers", "raw.raw_orders", "staging.stg_orders",
                                       "staging.stg_customers"}
    assert "not_null_stg_orders_order_id" in result.out and "relationships_stg_orders" in result.out


# ----------------------------------------------------------------- commands


def test_seed_run_test_commands(jaffle, capsys):
    seeded = run(capsys, jaffle, "seed")
    assert seeded.code == 0, seeded
    assert _built_relations(jaffle) == {"raw.raw_customers", "raw.raw_orders", "raw.raw_payments"}
    ran = run(capsys, jaffle, "run")
    assert ran.code == 0, ran
    assert "PASS" not in ran.out and "seed" not in ran.out.split("\n", 1)[1]
    assert {"marts.customers", "marts.orders_log", "main.customer_summary"} <= _built_relations(jaffle)
    tested = run(capsys, jaffle, "test")
    assert tested.code == 0, tested
    assert tested.out.count("PASS") == 8 and " OK " not in tested.out


def test_show_model_and_inline_in_each_format(built, capsys):
    table = run(capsys, built, "show", "customers")
    assert table.code == 0, table
    assert "customer_id" in table.out and "Michael" in table.out and "(3 rows)" in table.out

    as_csv = run(capsys, built, "show", "--inline", "select customer_id, first_name from marts.customers order by 1",
                 "--format", "csv")
    assert list(csv.reader(io.StringIO(as_csv.out))) == [
        ["customer_id", "first_name"], ["1", "Michael"], ["2", "Shawn"], ["3", "Kathleen"]]

    as_json = run(capsys, built, "show", "orders", "--format", "json", "--limit", "2")
    rows = json.loads(as_json.out)
    assert len(rows) == 2 and set(rows[0]) == {"order_id", "customer_id", "order_date", "status", "amount"}


def test_show_is_read_only(built, capsys):
    result = run(capsys, built, "show", "--inline", "delete from marts.customers")
    assert result.code == 2
    assert "show is read-only" in result.err and "DELETE" in result.err
    result = run(capsys, built, "show", "--inline", "create table main.x as select 1")
    assert result.code == 2
    assert query(warehouse(built), "select count(*) from marts.customers") == [(3,)]
    assert TRACEBACK not in result.text


def test_show_unknown_model_and_no_warehouse(jaffle, capsys):
    result = run(capsys, jaffle, "show", "customers")
    assert result.code == 2 and "duckrec build" in result.err
    result = run(capsys, jaffle, "show", "custmers")
    assert result.code == 2 and "Did you mean 'customers'" in result.err


def test_clean_removes_target(built, capsys):
    assert (built / "target/manifest.json").exists()
    result = run(capsys, built, "clean")
    assert result.code == 0
    assert not (built / "target").exists()
    assert warehouse(built).exists()


def test_ls_outputs(jaffle, capsys):
    paths = _ls(capsys, jaffle, "--output", "path", "--resource-type", "model")
    assert "sql/marts/orders.sql" in paths and "python_models/customer_summary.py" in paths
    rows = [json.loads(line) for line in run(capsys, jaffle, "ls", "--output", "json").out.splitlines()]
    by_name = {r["name"]: r for r in rows}
    assert by_name["order_payments"]["materialized"] == "ephemeral"
    assert by_name["orders_log"]["tags"] == ["marts", "inc"]
    assert by_name["raw_orders"]["resource_type"] == "seed"


# ----------------------------------------------------------------- flags


def test_fail_fast_skips_the_rest(jaffle, capsys):
    (jaffle / "sql/staging/stg_customers.sql").write_text("select broken_column from {{ source('shop', 'raw_customers') }}")
    normal = run(capsys, jaffle, "build")
    assert normal.code == 1
    assert "OK    view \"staging\".\"stg_payments\"" in normal.out  # unrelated branch still built
    fast = run(capsys, jaffle, "build", "--fail-fast")
    assert fast.code == 1
    assert "--fail-fast" in fast.out
    after_error = fast.out.split("ERROR", 1)[1]
    assert " OK " not in after_error and " PASS " not in after_error


def test_quiet_prints_only_problems_and_summary(jaffle, capsys):
    result = run(capsys, jaffle, "build", "--quiet")
    assert result.code == 0
    lines = [line for line in result.out.splitlines() if line.strip()]
    assert len(lines) == 2 and lines[0].startswith("Finished build") and lines[1].startswith("Slowest: ")
    (jaffle / "sql/marts/customers.sql").write_text("select nope")
    result = run(capsys, jaffle, "build", "--quiet")
    assert result.code == 1
    assert "ERROR" in result.out and "Finished build" in result.out and " OK " not in result.out


def test_json_log_every_line_parses(jaffle, capsys):
    (jaffle / "sql/marts/customers.sql").write_text("select nope")
    result = run(capsys, jaffle, "build", "--log-format", "json")
    assert result.code == 1
    events = [json.loads(line) for line in result.out.splitlines()]
    assert events and all("event" in e and "ts" in e for e in events)
    nodes = {e["node"]: e for e in events if e["event"] == "node"}
    assert nodes["model.customers"]["status"] == "error" and "nope" in nodes["model.customers"]["message"]
    assert nodes["model.orders"]["rows"] == 4
    assert nodes["model.customer_summary"]["status"] == "skipped"
    summary = events[-1]
    assert summary["event"] == "summary" and summary["n_errors"] == 1
    assert events[0]["event"] == "info"

    (jaffle / "sql/marts/customers.sql").write_text(JAFFLE["sql/marts/customers.sql"])
    result = run(capsys, jaffle, "build", "--log-format", "json")
    assert result.code == 0, result
    events = [json.loads(line) for line in result.out.splitlines()]
    assert {"event": "log", "node": "model.customer_summary", "message": "3 customers"}.items() <= next(
        e for e in events if e["event"] == "log").items()


def test_target_selects_the_second_warehouse(jaffle, capsys):
    result = run(capsys, jaffle, "build", "--target", "prod", "-s", "raw_customers")
    assert result.code == 0, result
    assert (jaffle / "prod.duckdb").exists() and not warehouse(jaffle).exists()
    assert query(jaffle / "prod.duckdb", "select count(*) from raw.raw_customers") == [(3,)]
    shown = run(capsys, jaffle, "show", "raw_customers", "--target", "prod", "--format", "csv")
    assert shown.code == 0 and "Kathleen" in shown.out
    bad = run(capsys, jaffle, "build", "--target", "prd")
    assert bad.code == 2 and "unknown target 'prd'" in bad.err and "'prod'" in bad.err


def test_warehouse_env_override(jaffle, capsys, monkeypatch, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("other") / "override.duckdb"
    monkeypatch.setenv("DUCKREC_WAREHOUSE", str(elsewhere))
    result = run(capsys, jaffle, "seed", "-s", "raw_payments")
    assert result.code == 0, result
    assert elsewhere.exists() and not warehouse(jaffle).exists()
    assert query(elsewhere, "select count(*) from raw.raw_payments") == [(4,)]


def test_bad_vars_flag(jaffle, capsys):
    result = run(capsys, jaffle, "build", "--vars", "[1, 2]")
    assert result.code == 2 and "--vars must be a mapping" in result.err


def test_no_project_file(tmp_path, capsys):
    result = run(capsys, tmp_path, "build")
    assert result.code == 2 and "no project.yml" in result.err


def test_target_warehouse_path_with_env_var_and_missing_folder(tmp_path, capsys, monkeypatch):
    root = write_project(tmp_path, {
        "project.yml": """
            name: envy
            target: ci
            targets:
              dev: {warehouse: warehouse.duckdb}
              ci: {warehouse: "{{ env_var('DUCKREC_TEST_WH_DIR', 'default_dir') }}/nested/ci.duckdb"}
        """,
        "sql/one.sql": "select 1 as a",
    })
    assert run(capsys, root, "build").code == 0
    assert query(root / "default_dir/nested/ci.duckdb", "select a from main.one") == [(1,)]
    monkeypatch.setenv("DUCKREC_TEST_WH_DIR", str(tmp_path / "elsewhere"))
    assert run(capsys, root, "build").code == 0
    assert query(tmp_path / "elsewhere/nested/ci.duckdb", "select a from main.one") == [(1,)]
    assert not warehouse(root).exists()


def test_show_inline_with_trailing_comment_and_ephemeral_model(built, capsys):
    result = run(capsys, built, "show", "--inline", "select count(*) as n from marts.orders -- all of them",
                 "--format", "csv")
    assert result.code == 0, result
    assert result.out.split() == ["n", "4"]
    result = run(capsys, built, "show", "order_payments")
    assert result.code == 2 and "order_payments is ephemeral" in result.err
