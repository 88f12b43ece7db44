"""Tiny duckrec projects written into tmp_path, and helpers to run the CLI against them.

`write_project(tmp_path, files)` writes a dict of {relative path: text} (dedented) and
returns the project folder. `JAFFLE` is a jaffle-shop-sized project; tests copy it and
change a file or two.
"""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb

from duckrec.cli import main
from duckrec.execute.runner import Options, Runner
from duckrec.execute.reporter import Reporter
from duckrec.parser.project import load_project

TRACEBACK = "Traceback (most recent call last)"


def write_project(root: Path, files: dict[str, str | None]) -> Path:
    """Write `files` under `root` (a value of None deletes that file); returns `root`."""
    root = Path(root)
    for rel, text in files.items():
        path = root / rel
        if text is None:
            if path.exists():
                path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def project(root: Path, files: dict[str, str | None], base: dict[str, str] | None = None) -> Path:
    """`base` (default: a minimal project.yml) overlaid with `files`."""
    merged = dict(MINIMAL if base is None else base)
    merged.update(files)
    return write_project(root, merged)


class Result:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    @property
    def text(self) -> str:
        return self.out + self.err

    def __repr__(self) -> str:  # shown by pytest when an assert on a Result fails
        return f"Result(code={self.code})\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


def run(capsys, root: Path, *args: str) -> Result:
    """`duckrec <args> --project-dir root` in this process; stdout/stderr captured."""
    capsys.readouterr()
    code = main([*args, "--project-dir", str(root)])
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def run_process(root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Result:
    """`duckrec` in a separate process (for lock and kill tests)."""
    proc = subprocess.run([sys.executable, "-m", "duckrec.cli", *args, "--project-dir", str(root)],
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
    return Result(proc.returncode, proc.stdout, proc.stderr)


_BUILT: dict[str, Path] = {}


def built_copy(dest: Path, files: dict[str, str], cache: Path) -> Path:
    """`files` built once per test session under `cache`, then copied to `dest` for each test."""
    key = str(id(files))
    if key not in _BUILT:
        template = write_project(cache / f"template_{len(_BUILT)}", files)
        reporter = Reporter(quiet=True, out=io.StringIO())
        assert Runner(load_project(template), Options(quiet=True), reporter).run() == 0
        _BUILT[key] = template
    shutil.copytree(_BUILT[key], dest, dirs_exist_ok=True)
    return Path(dest)


def query(warehouse: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def warehouse(root: Path) -> Path:
    return Path(root) / "warehouse.duckdb"


MINIMAL = {
    "project.yml": """
        name: tiny
        targets:
          dev: {warehouse: warehouse.duckdb}
    """,
}

# A jaffle-shop-sized project: 3 seeds, staging views, tables, an incremental model with
# a unique_key, an ephemeral model, a Python model returning polars, generic tests on
# columns and models (under both `tests:` and `data_tests:`), a singular test, a macro,
# a declared source, vars, tags and per-folder defaults.
JAFFLE = {
    "project.yml": """
        name: jaffle
        target: dev
        targets:
          dev: {warehouse: warehouse.duckdb}
          prod: {warehouse: prod.duckdb}
        vars:
          min_amount: 0
        models:
          staging: {+schema: staging, +materialized: view, +tags: [staging]}
          marts: {+schema: marts, +materialized: table, +tags: [marts]}
        seeds:
          raw_orders:
            +column_types: {id: INTEGER, amount: 'DECIMAL(10,2)', order_date: DATE}
    """,
    "seeds/raw_customers.csv": """
        id,first_name,last_name
        1,Michael,P.
        2,Shawn,M.
        3,Kathleen,P.
    """,
    # a header with trailing spaces: the engine trims them
    "seeds/raw_orders.csv": """
        id,user_id ,order_date,status ,amount
        1,1,2018-01-01,completed,10.00
        2,3,2018-01-02,completed,20.50
        3,2,2018-01-04,shipped,5.25
        4,1,2018-01-05,placed,7.00
    """,
    "seeds/raw_payments.csv": """
        id,order_id,payment_method,amount
        1,1,credit_card,1000
        2,2,coupon,2050
        3,3,bank_transfer,525
        4,4,credit_card,700
    """,
    "sql/macros/money.sql": """
        {% macro cents_to_dollars(col) %}({{ col }} / 100)::decimal(16, 2){% endmacro %}
    """,
    "sql/staging/stg_customers.sql": """
        with source as (select * from {{ source('shop', 'raw_customers') }}),
        renamed as (
            select id as customer_id, first_name, last_name from source
        )
        select * from renamed
    """,
    "sql/staging/stg_orders.sql": """
        with source as (select * from {{ ref('raw_orders') }}),
        renamed as (
            select id as order_id, user_id as customer_id, order_date, status, amount
            from source
            where amount >= {{ var('min_amount') }}
        )
        select * from renamed
    """,
    "sql/staging/stg_payments.sql": """
        select id as payment_id, order_id, payment_method, {{ cents_to_dollars('amount') }} as amount
        from {{ ref('raw_payments') }}
    """,
    "sql/marts/order_payments.sql": """
        {{ config(materialized='ephemeral') }}
        select order_id, sum(amount) as paid from {{ ref('stg_payments') }} group by order_id
    """,
    "sql/marts/orders.sql": """
        with o as (select * from {{ ref('stg_orders') }}),
        p as (select * from {{ ref('order_payments') }})
        select o.order_id, o.customer_id, o.order_date, o.status, p.paid as amount
        from o left join p using (order_id)
    """,
    "sql/marts/customers.sql": """
        with c as (select * from {{ ref('stg_customers') }}),
        o as (select * from {{ ref('orders') }})
        select c.customer_id, c.first_name, count(o.order_id) as n_orders, coalesce(sum(o.amount), 0) as lifetime_value
        from c left join o using (customer_id)
        group by all
    """,
    "sql/marts/orders_log.sql": """
        {{ config(materialized='incremental', unique_key='order_id', tags=['inc']) }}
        with o as (select * from {{ ref('stg_orders') }})
        select order_id, status, amount from o
        {% if is_incremental() %}
        where order_id >= (select max(order_id) from {{ this }})
        {% endif %}
    """,
    "python_models/customer_summary.py": """
        import polars as pl


        def model(dbt, session):
            dbt.config(materialized="table")
            df = dbt.ref("customers").pl()
            dbt.log(f"{df.height} customers")
            return df.select(pl.col("customer_id"), (pl.col("lifetime_value") * 2).alias("double_value"))
    """,
    "models/sources.yml": """
        version: 2
        sources:
          - name: shop
            schema: raw
            tables:
              - name: raw_customers
    """,
    "models/schema.yml": """
        version: 2
        models:
          - name: stg_orders
            columns:
              - name: order_id
                data_tests: [unique, not_null]
              - name: status
                tests:
                  - accepted_values:
                      values: [placed, shipped, completed, returned]
              - name: customer_id
                data_tests:
                  - relationships: {to: ref('stg_customers'), field: customer_id}
          - name: customers
            description: one row per customer
            columns:
              - name: customer_id
                tests: [unique, not_null]
          - name: orders_log
            data_tests:
              - unique: {column_name: order_id}
    """,
    "tests/data_tests/no_negative_value.sql": """
        select * from {{ ref('customers') }} where lifetime_value < 0
    """,
}
