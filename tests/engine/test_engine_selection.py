"""dbt's selection syntax: graph operators with depth, @, config./result: methods, intersection,
eager test selection, and the message for a method that does not exist."""
from __future__ import annotations

import pytest

from engine_fixtures import JAFFLE, TRACEBACK, run, write_project


@pytest.fixture
def jaffle(tmp_path):
    return write_project(tmp_path, JAFFLE)


def _ls(capsys, root, *args, kind=("model",)) -> list[str]:
    types = [a for k in kind for a in ("--resource-type", k)]
    result = run(capsys, root, "ls", *args, *types)
    assert result.code == 0, result
    return sorted(result.out.split())


def test_graph_operators_with_depth_and_at(jaffle, capsys):
    assert _ls(capsys, jaffle, "-s", "1+orders") == ["marts.order_payments", "marts.orders", "staging.stg_orders"]
    assert _ls(capsys, jaffle, "-s", "2+orders", kind=("seed",)) == ["raw.raw_orders"]
    assert _ls(capsys, jaffle, "-s", "3+orders", kind=("seed",)) == ["raw.raw_orders", "raw.raw_payments"]
    assert _ls(capsys, jaffle, "-s", "orders+1") == ["marts.customers", "marts.orders"]
    assert _ls(capsys, jaffle, "-s", "stg_payments+2") == ["marts.order_payments", "marts.orders",
                                                         "staging.stg_payments"]
    # @: the descendants, and everything those need (stg_customers, for customers)
    assert _ls(capsys, jaffle, "-s", "@orders") == [
        "main.customer_summary", "marts.customers", "marts.order_payments", "marts.orders",
        "staging.stg_customers", "staging.stg_orders", "staging.stg_payments"]


def test_config_method_and_comma_intersection(jaffle, capsys):
    assert _ls(capsys, jaffle, "-s", "config.materialized:table") == [
        "main.customer_summary", "marts.customers", "marts.orders"]
    assert _ls(capsys, jaffle, "-s", "config.unique_key:order_id") == ["marts.orders_log"]
    # a comma is an intersection, a space a union
    assert _ls(capsys, jaffle, "-s", "tag:marts,config.materialized:incremental") == ["marts.orders_log"]
    assert _ls(capsys, jaffle, "-s", "tag:marts,orders+") == ["marts.customers", "marts.orders"]
    assert _ls(capsys, jaffle, "-s", "tag:staging,tag:marts") == []
    assert len(_ls(capsys, jaffle, "-s", "tag:staging", "tag:marts")) == 7


def test_result_method_reads_the_last_run(jaffle, capsys):
    (jaffle / "sql/staging/stg_payments.sql").write_text("select nonsense from {{ ref('raw_payments') }}")
    assert run(capsys, jaffle, "build").code == 1
    assert _ls(capsys, jaffle, "-s", "result:error") == ["staging.stg_payments"]
    assert _ls(capsys, jaffle, "-s", "result:error+") == [
        "main.customer_summary", "marts.customers", "marts.order_payments", "marts.orders", "staging.stg_payments"]
    assert "marts.orders" in _ls(capsys, jaffle, "-s", "result:skipped")


def test_result_method_without_a_previous_run_says_so(jaffle, capsys):
    result = run(capsys, jaffle, "ls", "-s", "result:error+")
    assert result.code == 2 and "run_results.json, and there is none yet" in result.err


def test_an_unknown_method_lists_the_methods(jaffle, capsys):
    result = run(capsys, jaffle, "build", "-s", "exposure:weekly")
    assert result.code == 2, result
    assert "unknown selector method 'exposure'" in result.err
    assert "tag, path" in result.err and "config.<key>" in result.err and "result" in result.err
    assert "no node named" not in result.err and TRACEBACK not in result.text


def test_tests_follow_any_selected_node_they_test(jaffle, capsys):
    # eager indirect selection: the relationships test of stg_orders also tests stg_customers
    tests = _ls(capsys, jaffle, "-s", "stg_customers", kind=("test",))
    assert tests == ["relationships_stg_orders_customer_id__customer_id__ref_stg_customers_"]
    # ...unless one of its nodes is excluded
    assert _ls(capsys, jaffle, "-s", "stg_customers", "--exclude", "stg_orders", kind=("test",)) == []


def test_folder_names_resource_and_test_types_and_sources(jaffle, capsys):
    # a bare folder name selects the folder, as dbt's fqn method does
    assert _ls(capsys, jaffle, "-s", "staging") == ["staging.stg_customers", "staging.stg_orders",
                                                    "staging.stg_payments"]
    assert _ls(capsys, jaffle, "-s", "jaffle.marts.orders") == ["marts.orders"]
    assert _ls(capsys, jaffle, "-s", "resource_type:seed", kind=("seed", "model")) == [
        "raw.raw_customers", "raw.raw_orders", "raw.raw_payments"]
    assert _ls(capsys, jaffle, "-s", "test_type:singular", kind=("test",)) == ["no_negative_value"]
    assert "no_negative_value" not in _ls(capsys, jaffle, "-s", "test_type:generic", kind=("test",))
    assert _ls(capsys, jaffle, "-s", "test_name:accepted_values", kind=("test",)) == [
        "accepted_values_stg_orders_status__placed__shipped__completed__returned"]
    # source: what reads the source (and the seed behind it); source:x+ its descendants
    assert _ls(capsys, jaffle, "-s", "source:shop", kind=("seed", "model")) == ["raw.raw_customers",
                                                                             "staging.stg_customers"]
    assert "main.customer_summary" in _ls(capsys, jaffle, "-s", "source:shop.raw_customers+")
