"""End to end: a jaffle-shop-sized project built twice, Jinja rendering, artifacts, run history."""
from __future__ import annotations

import json

from engine_fixtures import JAFFLE, TRACEBACK, query, run, warehouse, write_project


def test_jaffle_builds_then_rebuilds_incrementally(tmp_path, capsys):
    root = write_project(tmp_path, JAFFLE)
    first = run(capsys, root, "build")
    assert first.code == 0, first
    assert "Finished build" in first.out and "error" not in first.out.lower()
    wh = warehouse(root)

    # seeds land in raw with declared types; the header's trailing spaces are trimmed
    types = dict(query(wh, "select column_name, data_type from information_schema.columns "
                           "where table_schema = 'raw' and table_name = 'raw_orders'"))
    assert types == {"id": "INTEGER", "user_id": "BIGINT", "order_date": "DATE", "status": "VARCHAR",
                     "amount": "DECIMAL(10,2)"}
    # staging is views, marts are tables, the ephemeral model is no relation at all
    kinds = dict(query(wh, "select table_schema || '.' || table_name, table_type from information_schema.tables "
                           "where table_schema in ('staging', 'marts', 'main')"))
    assert kinds["staging.stg_orders"] == "VIEW"
    assert kinds["marts.customers"] == "BASE TABLE"
    assert kinds["marts.orders_log"] == "BASE TABLE"
    assert kinds["main.customer_summary"] == "BASE TABLE"
    assert "marts.order_payments" not in kinds
    # the ephemeral model's rows reached `orders` through a CTE; the macro converted cents
    assert query(wh, "select order_id, amount from marts.orders order by order_id") == [
        (1, 10), (2, 20.5), (3, 5.25), (4, 7)]
    assert query(wh, "select customer_id, n_orders, lifetime_value from marts.customers order by 1") == [
        (1, 2, 17), (2, 1, 5.25), (3, 1, 20.5)]
    assert query(wh, "select customer_id, double_value from main.customer_summary order by 1") == [
        (1, 34), (2, 10.5), (3, 41)]
    assert "customer_summary | 3 customers" in first.out  # dbt.log line

    # new data: order 4 changes status, order 5 arrives
    (root / "seeds/raw_orders.csv").write_text(
        "id,user_id ,order_date,status ,amount\n"
        "1,1,2018-01-01,completed,10.00\n2,3,2018-01-02,completed,20.50\n"
        "3,2,2018-01-04,shipped,5.25\n4,1,2018-01-05,completed,7.00\n5,2,2018-01-06,placed,1.00\n")
    second = run(capsys, root, "build")
    assert second.code == 0, second
    rows = query(wh, "select order_id, status from marts.orders_log order by order_id")
    assert rows == [(1, "completed"), (2, "completed"), (3, "shipped"), (4, "completed"), (5, "placed")]

    # the incremental run only touched rows from order 4 on: change an old row, rebuild incrementally
    con_sql = "select status from marts.orders_log where order_id = 1"
    (root / "seeds/raw_orders.csv").write_text(
        (root / "seeds/raw_orders.csv").read_text().replace("1,1,2018-01-01,completed", "1,1,2018-01-01,returned"))
    assert run(capsys, root, "build").code == 0
    assert query(wh, con_sql) == [("completed",)]
    assert query(wh, "select count(*) from marts.orders_log") == [(5,)]

    # --full-refresh rebuilds from scratch and picks the old row's change up
    refreshed = run(capsys, root, "build", "--full-refresh")
    assert refreshed.code == 0, refreshed
    assert query(wh, con_sql) == [("returned",)]
    assert query(wh, "select count(*) from marts.orders_log") == [(5,)]


def test_build_runs_each_models_tests_right_after_it(tmp_path, capsys):
    root = write_project(tmp_path, JAFFLE)
    result = run(capsys, root, "build")
    assert result.code == 0, result
    lines = [line for line in result.out.splitlines() if " of " in line]
    customers = next(i for i, line in enumerate(lines) if '"marts"."customers"' in line)
    assert "unique_customers_customer_id" in lines[customers + 1] + lines[customers + 2]
    assert "not_null_customers_customer_id" in lines[customers + 1] + lines[customers + 2]
    # seeds first, and each line has a status, a time and rows
    assert all("seed" in line for line in lines[:3])
    assert any("[3 rows in" in line for line in lines)
    assert all(line.split()[4] in ("OK", "PASS") for line in lines)


JINJA = {
    "project.yml": """
        name: jinja_shop
        targets: {dev: {warehouse: warehouse.duckdb}}
        vars: {k: 3, greeting: hello}
        models:
          +materialized: table
    """,
    "seeds/nums.csv": "n\n1\n2\n3\n4\n5\n",
    "models/sources.yml": """
        version: 2
        sources:
          - name: landing
            schema: raw
            tables:
              - name: nums
    """,
    "sql/macros/util.sql": """
        {% macro times(col, factor=10) %}{{ col }} * {{ factor }}{% endmacro %}
        {% macro first_k() %}{{ var('k') }}{% endmacro %}
    """,
    "sql/from_source.sql": """
        select n from {{ source('landing', 'nums') }}
    """,
    "sql/top.sql": """
        {{ config(materialized='table', schema='marts') }}
        with base as (select n from {{ ref('from_source') }})
        select n, {{ times('n') }} as tenfold, '{{ var("greeting") }}' as greeting,
               '{{ var("missing", "fallback") }}' as defaulted,
               '{{ env_var("DUCKREC_TEST_COLOUR", "grey") }}' as colour,
               '{{ this }}' as me
        from base
        where n <= {{ first_k() }}
    """,
    "sql/inc.sql": """
        {{ config(materialized='incremental') }}
        select n, {% if is_incremental() %}'incremental'{% else %}'first'{% endif %} as run_kind
        from {{ ref('nums') }}
        {% if is_incremental() %}where n > (select max(n) from {{ this }}){% endif %}
    """,
}


def test_jinja_functions_vars_macros_and_env(tmp_path, capsys, monkeypatch):
    root = write_project(tmp_path, JINJA)
    monkeypatch.setenv("DUCKREC_TEST_COLOUR", "teal")
    result = run(capsys, root, "build")
    assert result.code == 0, result
    wh = warehouse(root)
    rows = query(wh, "select n, tenfold, greeting, defaulted, colour, me from marts.top order by n")
    assert rows == [(i, i * 10, "hello", "fallback", "teal", '"marts"."top"') for i in (1, 2, 3)]
    compiled = (root / "target/compiled/sql/top.sql").read_text()
    assert "where n <= 3" in compiled and '"main"."from_source"' in compiled and "{{" not in compiled

    # --vars overrides project vars
    result = run(capsys, root, "build", "--vars", "{k: 5, greeting: hi}")
    assert result.code == 0, result
    assert query(wh, "select count(*), min(greeting) from marts.top") == [(5, "hi")]

    # is_incremental() is false on the first build, true on the next
    assert query(wh, "select distinct run_kind from main.inc") == [("first",)]
    (root / "seeds/nums.csv").write_text("n\n1\n2\n3\n4\n5\n6\n")
    assert run(capsys, root, "build").code == 0
    assert query(wh, "select n, run_kind from main.inc where n = 6") == [(6, "incremental")]
    assert query(wh, "select count(*) from main.inc") == [(6,)]
    inc_sql = (root / "target/compiled/sql/inc.sql").read_text()
    assert 'where n > (select max(n) from "main"."inc")' in inc_sql


def test_compile_writes_sql_without_touching_the_warehouse(tmp_path, capsys):
    root = write_project(tmp_path, JINJA)
    result = run(capsys, root, "compile")
    assert result.code == 0, result
    assert "target/compiled/sql/top.sql" in result.out
    assert "n * 10" in (root / "target/compiled/sql/top.sql").read_text()
    assert not warehouse(root).exists()


def test_manifest_and_run_results(tmp_path, capsys):
    root = write_project(tmp_path, JAFFLE)
    assert run(capsys, root, "build").code == 0
    manifest = json.loads((root / "target/manifest.json").read_text())
    nodes = manifest["nodes"]
    orders = nodes["model.jaffle.orders"]
    assert set(orders["depends_on"]["nodes"]) == {"model.jaffle.stg_orders", "model.jaffle.order_payments"}
    assert orders["config"]["materialized"] == "table" and orders["config"]["schema"] == "marts"
    assert orders["compiled_path"] == "target/compiled/sql/marts/orders.sql"
    assert orders["relation_name"] == '"warehouse"."marts"."orders"' and orders["fqn"] == ["jaffle", "marts", "orders"]
    assert (root / orders["compiled_path"]).exists()
    assert nodes["model.jaffle.orders_log"]["config"]["unique_key"] == "order_id"
    assert nodes["model.jaffle.customer_summary"]["depends_on"]["nodes"] == ["model.jaffle.customers"]
    # through source(): the seed behind it, and the source itself
    assert nodes["model.jaffle.stg_customers"]["depends_on"]["nodes"] == [
        "seed.jaffle.raw_customers", "source.jaffle.shop.raw_customers"]
    assert nodes["model.jaffle.stg_payments"]["depends_on"]["macros"] == ["macro.jaffle.cents_to_dollars"]
    assert nodes["model.jaffle.customers"]["description"] == "one row per customer"
    assert "test.jaffle.no_negative_value" in nodes and "seed.jaffle.raw_orders" in nodes
    assert manifest["child_map"]["model.jaffle.orders"] == ["model.jaffle.customers"]

    results = json.loads((root / "target/run_results.json").read_text())
    by_id = {r["unique_id"]: r for r in results["results"]}
    assert by_id["model.jaffle.customers"]["status"] == "success"
    assert by_id["model.jaffle.customers"]["adapter_response"]["rows_affected"] == 3
    unique = next(k for k in by_id if k.startswith("test.jaffle.unique_customers_customer_id."))
    assert by_id[unique]["status"] == "pass" and unique in nodes
    assert all(isinstance(r["execution_time"], float) for r in results["results"])


def test_run_history_tables(tmp_path, capsys):
    root = write_project(tmp_path, JAFFLE)
    assert run(capsys, root, "build").code == 0
    (root / "sql/marts/customers.sql").write_text("select nope from {{ ref('stg_customers') }}")
    failed = run(capsys, root, "build")
    assert failed.code == 1
    wh = warehouse(root)
    runs = query(wh, "select status, n_errors, n_skipped from _duckrec.runs order by started_at")
    assert runs[0] == ("success", 0, 0)
    assert runs[1][0] == "error" and runs[1][1] == 1 and runs[1][2] > 0
    node = query(wh, "select n.status, n.rows, n.error from _duckrec.node_runs n join _duckrec.runs r using (run_id) "
                     "where n.name = 'customers' order by r.started_at")
    assert node[0][:2] == ("success", 3)
    assert node[1][0] == "error" and "nope" in node[1][2]
    # the failed build still published its history, and the old table is intact
    assert query(wh, "select count(*) from marts.customers") == [(3,)]
    assert TRACEBACK not in failed.text


def test_nested_ephemerals_and_switching_materialization(tmp_path, capsys):
    root = write_project(tmp_path, {
        "project.yml": "name: mats\n",
        "sql/base_eph.sql": "{{ config(materialized='ephemeral') }}\nselect 1 as a union all select 2",
        "sql/mid_eph.sql": "{{ config(materialized='ephemeral') }}\nselect a * 10 as b from {{ ref('base_eph') }}",
        "sql/final.sql": "with x as (select * from {{ ref('mid_eph') }})\nselect sum(b) as total from x",
    })
    result = run(capsys, root, "build")
    assert result.code == 0, result
    wh = warehouse(root)
    assert query(wh, "select total from main.final") == [(30,)]
    assert query(wh, "select table_type from information_schema.tables where table_name = 'final'") == [("VIEW",)]
    assert query(wh, "select count(*) from information_schema.tables where table_name like '%eph%'") == [(0,)]

    final = root / "sql/final.sql"
    final.write_text("{{ config(materialized='table') }}\n" + final.read_text())
    assert run(capsys, root, "build").code == 0
    assert query(wh, "select table_type from information_schema.tables where table_name = 'final'") == [
        ("BASE TABLE",)]
    final.write_text(final.read_text().replace("'table'", "'view'"))
    assert run(capsys, root, "build").code == 0
    assert query(wh, "select table_type from information_schema.tables where table_name = 'final'") == [("VIEW",)]
    assert query(wh, "select total from main.final") == [(30,)]
