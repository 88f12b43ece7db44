"""Python models: dbt.ref/config/this/is_incremental, return types, static deps, imports, exceptions."""
from __future__ import annotations

import json
import subprocess
import sys

from engine_fixtures import TRACEBACK, project, query, run, warehouse

BASE = {
    "project.yml": """
        name: py_shop
        targets: {dev: {warehouse: warehouse.duckdb}}
        vars: {factor: 3}
    """,
    "seeds/items.csv": "item_id,price\n1,10\n2,20\n3,30\n",
    "sql/cheap.sql": "select * from {{ ref('items') }} where price < 25",
}


def test_python_model_returns_polars_arrow_or_relation(tmp_path, capsys):
    root = project(tmp_path, {
        "python_models/as_polars.py": """
            import polars as pl

            def model(dbt, session):
                dbt.config(materialized="table", schema="py")
                factor = dbt.var("factor")
                df = dbt.ref("cheap").pl()
                return df.with_columns((pl.col("price") * factor).alias("scaled"), pl.lit(dbt.this).alias("me"))
        """,
        "python_models/as_arrow.py": """
            import pyarrow as pa

            def model(dbt, session):
                rel = dbt.ref("items")
                assert rel.__class__.__module__.startswith("duckdb"), rel
                return rel.filter("item_id = 3").to_arrow_table()
        """,
        "python_models/as_relation.py": """
            def model(dbt, session):
                return dbt.ref("as_polars").aggregate("count(*) as n")
        """,
        "python_models/relation_over_arrow.py": """
            import pyarrow as pa

            def model(dbt, session):
                # a relation that reads a Python object cannot be a stored view: still a table
                return session.from_arrow(pa.table({"x": [1, 2]})).project("x * 10 as y")
        """,
    }, base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 0, result
    wh = warehouse(root)
    assert query(wh, "select item_id, scaled, me from py.as_polars order by 1") == [
        (1, 30, '"py"."as_polars"'), (2, 60, '"py"."as_polars"')]
    assert query(wh, "select item_id, price from main.as_arrow") == [(3, 30)]
    assert query(wh, "select n from main.as_relation") == [(2,)]
    assert query(wh, "select y from main.relation_over_arrow order by 1") == [(10,), (20,)]


def test_python_model_is_incremental_and_unique_key(tmp_path, capsys):
    root = project(tmp_path, {
        "python_models/snap.py": """
            def model(dbt, session):
                dbt.config(materialized="incremental", unique_key="item_id")
                items = dbt.ref("items")
                if dbt.is_incremental:
                    items = items.filter(f"item_id >= (select max(item_id) from {dbt.this})")
                return items.project(f"item_id, price, {str(dbt.is_incremental).lower()} as was_incremental")
        """,
    }, base=BASE)
    assert run(capsys, root, "build").code == 0
    (root / "seeds/items.csv").write_text("item_id,price\n1,10\n2,20\n3,33\n4,40\n")
    result = run(capsys, root, "build")
    assert result.code == 0, result
    assert query(warehouse(root), "select item_id, price, was_incremental from main.snap order by 1") == [
        (1, 10, False), (2, 20, False), (3, 33, True), (4, 40, True)]


def test_dependencies_are_found_without_running_the_model(tmp_path, capsys):
    root = project(tmp_path, {
        "python_models/explodes.py": """
            raise RuntimeError("importing this file must not happen during ls")

            def model(dbt, session):
                return dbt.ref("cheap")
        """,
    }, base=BASE)
    result = run(capsys, root, "ls", "--output", "json")
    assert result.code == 0, result
    listed = {d["name"]: d for d in map(json.loads, result.out.splitlines())}
    assert listed["explodes"]["depends_on"] == ["model.cheap"]
    assert listed["explodes"]["materialized"] == "table"
    # selection through the static deps works too
    ups = run(capsys, root, "ls", "-s", "+explodes")
    assert ups.out.split() == ["raw.items", "main.cheap", "main.explodes"]


def test_python_model_imports_a_project_helper(tmp_path, capsys):
    root = project(tmp_path, {
        "py_shop_helpers/__init__.py": "",
        "py_shop_helpers/pricing.py": """
            def with_tax(rel):
                return rel.project("item_id, price * 1.5 as gross")
        """,
        "python_models/_local_util_for_py_shop.py": "BONUS = 7\n",
        "python_models/gross.py": """
            from py_shop_helpers.pricing import with_tax
            from _local_util_for_py_shop import BONUS

            def model(dbt, session):
                return with_tax(dbt.ref("items")).project(f"item_id, gross + {BONUS} as gross")
        """,
    }, base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 0, result
    assert query(warehouse(root), "select item_id, gross from main.gross order by 1") == [
        (1, 22), (2, 37), (3, 52)]


def test_python_model_exception_names_model_and_shows_traceback(tmp_path, capsys):
    root = project(tmp_path, {
        "python_models/broken.py": """
            def helper(x):
                return x / 0

            def model(dbt, session):
                dbt.ref("items")
                return helper(1)
        """,
        "sql/after_broken.sql": "select * from {{ ref('broken') }}",
    }, base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 1
    assert "broken" in result.out and "ZeroDivisionError" in result.out
    assert "python_models/broken.py" in result.out and "line 2, in helper" in result.out
    assert "return x / 0" in result.out  # the user's own traceback, not the engine's
    assert "SKIP" in result.out and "after_broken" in result.out
    # the engine's frames are not shown: only the model's own traceback
    assert "runner.py" not in result.text and TRACEBACK not in result.text


def test_python_model_returning_wrong_type(tmp_path, capsys):
    root = project(tmp_path, {
        "python_models/wrong.py": """
            def model(dbt, session):
                return [1, 2, 3]
        """,
    }, base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 1
    assert "wrong returned list" in result.out and "polars DataFrame" in result.out


def test_python_model_with_a_non_literal_ref_is_a_clear_error(tmp_path, capsys):
    root = project(tmp_path, {
        "python_models/dyn.py": """
            NAME = "items"

            def model(dbt, session):
                return dbt.ref(NAME)
        """,
    }, base=BASE)
    result = run(capsys, root, "ls")
    assert result.code == 2
    assert "python_models/dyn.py:4" in result.err and "literal" in result.err
    assert TRACEBACK not in result.text


def test_python_model_reads_a_source(tmp_path, capsys):
    root = project(tmp_path, {
        "models/sources.yml": """
            version: 2
            sources:
              - name: landing
                schema: raw
                tables: [{name: items}]
        """,
        "python_models/from_source.py": """
            def model(dbt, session):
                return dbt.source("landing", "items").filter("price > 15")
        """,
    }, base=BASE)
    result = run(capsys, root, "build", "-s", "+from_source")
    assert result.code == 0, result
    assert query(warehouse(root), "select item_id from main.from_source order by 1") == [(2,), (3,)]


LAZY_CHECK = """
import sys
from duckrec.cli import main
code = main(sys.argv[1:])
heavy = sorted(m for m in ("polars", "torch", "duckrec_model_heavy") if m in sys.modules)
print("HEAVY", heavy)
sys.exit(code)
"""


def test_commands_without_python_models_do_not_import_polars_or_torch(tmp_path):
    root = project(tmp_path, {
        "python_models/heavy.py": """
            import polars
            import torch

            def model(dbt, session):
                return dbt.ref("cheap")
        """,
    }, base=BASE)

    def heavy_modules(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-c", LAZY_CHECK, *args, "--project-dir", str(root)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout.rsplit("HEAVY", 1)[1].strip()

    # listing finds heavy's deps without importing it; a SQL-only build imports neither library
    assert heavy_modules("ls", "-s", "+heavy") == "[]"
    assert heavy_modules("build", "--exclude", "heavy") == "[]"


def test_python_model_columns_take_the_yaml_data_type(tmp_path, capsys):
    root = project(tmp_path, {
        "python_models/typed.py": """
            import polars as pl

            def model(dbt, session):
                return pl.DataFrame({"doc": ['{"a": 1}'], "amount": ["1.50"]})
        """,
        "models/typed.yml": """
            version: 2
            models:
              - name: typed
                columns:
                  - {name: doc, data_type: JSON}
                  - {name: amount, data_type: 'DECIMAL(6,2)'}
        """,
    }, base=BASE)
    assert run(capsys, root, "build", "-s", "typed").code == 0
    wh = warehouse(root)
    assert query(wh, "select column_name, column_type from (describe main.typed)") == [
        ("doc", "JSON"), ("amount", "DECIMAL(6,2)")]
    assert query(wh, "select doc ->> 'a', amount from main.typed")[0][0] == "1"
