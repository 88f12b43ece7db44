"""Data tests: the four generic tests, singular tests, severity, failure messages, `tests:`/`data_tests:`."""
from __future__ import annotations

import json

from engine_fixtures import TRACEBACK, project, query, run, warehouse

BASE = {
    "project.yml": """
        name: dt_shop
        targets: {dev: {warehouse: warehouse.duckdb}}
        models:
          +materialized: table
    """,
    "seeds/users.csv": "user_id,country\n1,fr\n2,de\n3,fr\n",
    "seeds/orders.csv": "order_id,user_id,status\n10,1,paid\n11,2,paid\n12,3,refunded\n",
    "sql/stg_orders.sql": "select * from {{ ref('orders') }}",
    "sql/downstream.sql": "select count(*) as n from {{ ref('stg_orders') }}",
}


def _schema(columns_yaml: str, model_tests: str = "") -> dict[str, str]:
    return {"models/schema.yml": f"""
version: 2
models:
  - name: stg_orders
    columns:
{columns_yaml}
{model_tests}
"""}


def _statuses(root) -> dict[str, str]:
    results = json.loads((root / "target/run_results.json").read_text())["results"]
    # dbt's ids ("test.<project>.<name>.<hash>") as "test.<name>"
    return {".".join(r["unique_id"].split(".")[0:3:2]): r["status"] for r in results}


def test_all_generic_tests_pass_under_tests_and_data_tests(tmp_path, capsys):
    root = project(tmp_path, _schema("""
      - name: order_id
        data_tests: [unique, not_null]
      - name: status
        tests:
          - accepted_values: {values: [paid, refunded]}
      - name: user_id
        data_tests:
          - relationships: {to: ref('users'), field: user_id}
""", """
    tests:
      - unique: {column_name: "order_id || '-' || user_id"}
"""), base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 0, result
    statuses = _statuses(root)
    tests = {u: s for u, s in statuses.items() if u.startswith("test.")}
    assert len(tests) == 5 and set(tests.values()) == {"pass"}
    assert "test.relationships_stg_orders_user_id__user_id__ref_users_" in tests
    assert any(u.startswith("test.unique_stg_orders_order_id_user_id") for u in tests)


def test_unique_failure_shows_count_and_rows_and_skips_downstream(tmp_path, capsys):
    root = project(tmp_path, {
        **_schema("""
      - name: user_id
        data_tests: [unique]
"""),
        "seeds/orders.csv": "order_id,user_id,status\n10,1,paid\n11,1,paid\n12,2,paid\n13,2,x\n14,3,y\n",
    }, base=BASE)
    result = run(capsys, root, "build", "--publish-partial")
    assert result.code == 1
    assert "FAIL" in result.out and "unique_stg_orders_user_id" in result.out
    assert "2 failing row(s)" in result.out
    assert "unique_field=1" in result.out and "n_records=2" in result.out
    assert "SKIP" in result.out and "downstream" in result.out
    statuses = _statuses(root)
    assert statuses["model.downstream"] == "skipped" and statuses["test.unique_stg_orders_user_id"] == "fail"
    # a failing test does not un-build the model it tests
    assert query(warehouse(root), "select count(*) from main.stg_orders") == [(5,)]


def test_not_null_accepted_values_relationships_failures(tmp_path, capsys):
    root = project(tmp_path, {
        **_schema("""
      - name: order_id
        data_tests: [not_null]
      - name: status
        data_tests:
          - accepted_values: {values: [paid, refunded]}
      - name: user_id
        data_tests:
          - relationships: {to: ref('users'), field: user_id}
"""),
        "seeds/orders.csv": "order_id,user_id,status\n,1,paid\n11,7,lost\n12,3,lost\n",
    }, base=BASE)
    result = run(capsys, root, "test")
    # `test` alone needs built models: build them first without the tests
    assert result.code == 1
    assert run(capsys, root, "seed").code == 0 and run(capsys, root, "run").code == 0
    result = run(capsys, root, "test")
    assert result.code == 1
    out = result.out
    assert "not_null on stg_orders.order_id: 1 failing row(s)" in out
    assert "accepted_values on stg_orders.status: 1 failing row(s)" in out and "value_field='lost'" in out
    assert "n_records=2" in out
    assert "relationships on stg_orders.user_id: 1 failing row(s)" in out and "from_field=7" in out
    assert "Finished test" in out and "3 errors" in out


def test_severity_warn_exits_zero_and_keeps_downstream(tmp_path, capsys):
    root = project(tmp_path, {
        **_schema("""
      - name: status
        data_tests:
          - accepted_values: {values: [paid], config: {severity: warn}}
"""),
    }, base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 0, result
    assert "WARN" in result.out and "1 warning" in result.out
    statuses = _statuses(root)
    assert statuses["model.downstream"] == "success"
    assert query(warehouse(root), "select n from main.downstream") == [(3,)]
    assert query(warehouse(root), "select status from _duckrec.runs") == [("warn",)]


def test_severity_error_exits_one(tmp_path, capsys):
    root = project(tmp_path, _schema("""
      - name: status
        data_tests:
          - accepted_values: {values: [paid], severity: error}
"""), base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 1
    assert _statuses(root)["model.downstream"] == "skipped"


def test_singular_test(tmp_path, capsys):
    root = project(tmp_path, {
        "tests/data_tests/no_refunds.sql": "select order_id, status from {{ ref('stg_orders') }} where status = 'refunded'",
    }, base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 1
    assert "test no_refunds" in result.out and "1 failing row(s)" in result.out and "order_id=12" in result.out
    assert (root / "target/compiled/tests/data_tests/no_refunds.sql").exists()
    assert TRACEBACK not in result.text

    (root / "tests/data_tests/no_refunds.sql").write_text(
        "{{ config(severity='warn') }}\nselect * from {{ ref('stg_orders') }} where status = 'refunded'")
    result = run(capsys, root, "build")
    assert result.code == 0, result
    assert "WARN" in result.out


def test_unknown_generic_test_name(tmp_path, capsys):
    root = project(tmp_path, _schema("""
      - name: status
        data_tests: [uniqe]
"""), base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 2
    assert "models/schema.yml" in result.err and "uniqe" in result.err and "'unique'" in result.err


def test_tests_on_a_seed_and_a_where_config(tmp_path, capsys):
    root = project(tmp_path, {
        "models/seeds.yml": """
            version: 2
            seeds:
              - name: users
                columns:
                  - name: country
                    data_tests:
                      - accepted_values: {values: [fr]}
                      - accepted_values: {values: [fr], config: {where: "user_id <> 2"}}
        """,
        "sql/user_countries.sql": "select distinct country from {{ ref('users') }}",
    }, base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 1
    statuses = _statuses(root)
    assert statuses["test.accepted_values_users_country__fr"] == "fail"
    assert statuses["test.accepted_values_users_country__fr_2"] == "pass"
    assert "value_field='de'" in result.out
    # the seed's failing test blocks what reads the seed, and nothing else
    assert statuses["model.user_countries"] == "skipped"
    assert statuses["model.stg_orders"] == "success" and statuses["model.downstream"] == "success"
