"""A dbt-duckdb project, laid out as dbt-duckdb's docs lay one out, builds unchanged."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from engine_fixtures import TRACEBACK, query, run

HERE = Path(__file__).resolve().parents[1]  # tests/
SCHEMAS = HERE / "dbt_schemas"


@pytest.fixture
def shop(tmp_path, monkeypatch):
    monkeypatch.delenv("DBT_PROFILES_DIR", raising=False)
    return Path(shutil.copytree(HERE / "dbt_jaffle_shop", tmp_path / "jaffle_shop"))


def test_a_dbt_duckdb_project_builds_as_it_is(shop, capsys):
    result = run(capsys, shop, "build")
    assert result.code == 0, result
    wh = shop / "jaffle_shop.duckdb"  # profiles.yml's path
    tables = query(wh, "select table_schema, table_name, table_type from information_schema.tables "
                       "where table_schema = 'main' order by table_name")
    assert tables == [
        ("main", "customers", "BASE TABLE"), ("main", "orders", "BASE TABLE"),
        ("main", "raw_customers", "BASE TABLE"), ("main", "raw_orders", "BASE TABLE"),
        ("main", "raw_payments", "BASE TABLE"),
        ("main", "stg_customers", "VIEW"), ("main", "stg_orders", "VIEW"), ("main", "stg_payments", "VIEW")]
    # seeds typed as dbt-duckdb types them: whole numbers INTEGER, dates DATE
    types = dict(query(wh, "select column_name, data_type from information_schema.columns "
                           "where table_name = 'raw_orders'"))
    assert types == {"id": "INTEGER", "user_id": "INTEGER", "order_date": "DATE", "status": "VARCHAR"}
    assert query(wh, "select customer_id, number_of_orders, customer_lifetime_value from main.customers "
                     "order by 1") == [(1, 2, 35), (2, 1, 1), (3, 2, 37), (4, 1, 12.5)]
    assert query(wh, "select gift_card_amount, amount from main.orders where order_id = 6") == [(6.5, 12.5)]
    # dbt's test names
    for name in ("accepted_values_orders_status__placed__shipped__completed__return_pending__returned",
                 "relationships_orders_customer_id__customer_id__ref_customers_", "not_null_orders_amount",
                 "assert_positive_total_for_payments"):
        assert f"PASS  test {name} " in result.out
    # analyses are not built, and that is said once
    assert result.err.count("analysis-paths ['analysis'] are not compiled") == 1 and TRACEBACK not in result.text


def test_the_manifest_and_run_results_follow_dbts_schemas(shop, capsys):
    assert run(capsys, shop, "build").code == 0
    manifest = json.loads((shop / "target/manifest.json").read_text())
    jsonschema.validate(manifest, json.loads((SCHEMAS / "manifest_v12_essence.json").read_text()))
    results = json.loads((shop / "target/run_results.json").read_text())
    jsonschema.validate(results, json.loads((SCHEMAS / "run_results_v6_essence.json").read_text()))
    orders = manifest["nodes"]["model.jaffle_shop.orders"]
    assert orders["depends_on"]["nodes"] == ["model.jaffle_shop.stg_orders", "model.jaffle_shop.stg_payments"]
    assert orders["columns"]["status"]["description"].startswith("Orders can be one of the following statuses:")
    assert orders["relation_name"] == '"jaffle_shop"."main"."orders"'
    assert manifest["nodes"]["model.jaffle_shop.stg_payments"]["depends_on"]["macros"] == [
        "macro.jaffle_shop.cents_to_dollars"]
    assert set(manifest["docs"]) == {"doc.jaffle_shop.orders_status", "doc.jaffle_shop.__overview__"}
    long_test = next(n for n in manifest["nodes"].values() if n["name"].startswith("accepted_values_orders_status"))
    assert long_test["alias"].startswith("accepted_values_orders_") and len(long_test["alias"]) < 64
    assert {r["unique_id"] for r in results["results"]} <= set(manifest["nodes"])


def test_the_artifacts_parse_with_dbts_own_models_and_ids_match_dbt(shop, capsys):
    """dbt-artifacts-parser's classes are generated from dbt's published JSON schemas and forbid
    unknown keys; the ids below are the ones dbt-core 1.10 + dbt-duckdb 1.10 wrote for this project."""
    from dbt_artifacts_parser.parser import parse_manifest, parse_run_results

    assert run(capsys, shop, "build").code == 0
    manifest = json.loads((shop / "target/manifest.json").read_text())
    assert type(parse_manifest(manifest)).__name__ == "ManifestV12"
    results = json.loads((shop / "target/run_results.json").read_text())
    assert type(parse_run_results(results)).__name__ == "RunResultsV6"
    for uid in ("test.jaffle_shop.unique_customers_customer_id.c5af1ff4b1",
                "test.jaffle_shop.not_null_orders_amount.106140f9fd",
                "test.jaffle_shop.relationships_orders_customer_id__customer_id__ref_customers_.c6ec7f58f2",
                "test.jaffle_shop.accepted_values_stg_payments_payment_method__credit_card__coupon__bank_transfer__"
                "gift_card.3c3820f278",
                "seed.jaffle_shop.raw_orders", "model.jaffle_shop.customers"):
        assert uid in manifest["nodes"], uid


def test_unsupported_settings_are_listed_once_and_nothing_is_silently_dropped(shop, capsys):
    text = (shop / "dbt_project.yml").read_text()
    (shop / "dbt_project.yml").write_text(text + "on-run-end: [\"select 1\"]\nseeds:\n  jaffle_shop:\n"
                                          "    +schema: raw\n    +quote_columns: false\n")
    (shop / "profiles.yml").write_text((shop / "profiles.yml").read_text() + "      attach: []\n"
                                       "      settings: {memory_limit: 1GB}\n")
    result = run(capsys, shop, "build")
    assert result.code == 0, result
    warnings = [line for line in result.err.splitlines() if line.startswith("warning:")]
    assert any("`on-run-end` is not supported" in w for w in warnings)
    assert any("seeds.jaffle_shop.+quote_columns is not supported" in w for w in warnings)
    assert any("outputs.dev.attach is not supported" in w for w in warnings)
    assert len(warnings) == len(set(warnings))
    # +schema: dbt's generate_schema_name puts the seeds in <target schema>_raw
    assert query(shop / "jaffle_shop.duckdb", "select count(*) from main_raw.raw_orders") == [(6,)]


def test_a_profile_that_is_not_duckdb_is_refused(shop, capsys):
    (shop / "profiles.yml").write_text("jaffle_shop:\n  target: dev\n  outputs:\n    dev: {type: postgres}\n")
    result = run(capsys, shop, "build")
    assert result.code == 2 and "profiles.yml" in result.err and "type: duckdb" in result.err


def test_clean_removes_the_clean_targets(shop, capsys):
    assert run(capsys, shop, "build").code == 0
    (shop / "logs").mkdir()
    assert run(capsys, shop, "clean").code == 0
    assert not (shop / "target").exists() and not (shop / "logs").exists()
    assert (shop / "jaffle_shop.duckdb").exists()


def test_packages_snapshots_custom_tests_and_unit_tests_are_warned_about(shop, capsys):
    (shop / "packages.yml").write_text("packages:\n  - package: dbt-labs/dbt_utils\n    version: 1.1.1\n")
    (shop / "snapshots").mkdir()
    (shop / "snapshots/orders_snapshot.sql").write_text("{% snapshot orders_snapshot %}select 1{% endsnapshot %}")
    (shop / "macros/is_positive.sql").write_text("{% test is_positive(model, column_name) %}"
                                                 "select * from {{ model }} where {{ column_name }} < 0{% endtest %}")
    (shop / "models/unit.yml").write_text("unit_tests:\n  - name: t\n    model: orders\n")
    result = run(capsys, shop, "build")
    assert result.code == 0, result
    for text in ("packages.yml: packages are not supported", "snapshots: snapshots are not supported",
                 "macros/is_positive.sql: custom generic tests", "models/unit.yml: `unit_tests:` is not supported"):
        assert text in result.err, text
