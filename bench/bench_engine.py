#!/usr/bin/env python
"""Time whole-process `duckrec build`s against a plain-DuckDB floor measured in the same run.

Three projects:

- jaffle: 3 seeds (CSV, a few hundred rows each), 5 SQL models (3 staging views, 1 table,
  1 incremental table with a unique_key), 20 generic YAML tests; written as dbt's jaffle_shop
  is, with `{#- comments -#}`, a docs block and a `{% for %}` loop over payment methods.
- dbt_jaffle: a project modelled on dbt-labs' jaffle_shop_duckdb, laid out as dbt lays it out
  (tests/dbt_jaffle_shop: dbt_project.yml, profiles.yml, docs blocks, dbt 1.10 test syntax).
- chain:  N models (default 500, all tables) where model_i selects from ref(model_{i-1})
  with a trivial transformation; model_0 selects from range().

The floor for each case is a plain Python script, run as its own process with the same
interpreter, that imports duckdb, connects to a DuckDB file and runs exactly the SQL that
duckrec ran: seeds via read_csv, each model's compiled SQL (read from duckrec's
target/compiled/) as CREATE OR REPLACE TABLE/VIEW, each test as a count(*) query.

Each repetition, for each case: a clean warehouse, then a cold build and a second (warm)
build, for duckrec and for the floor, interleaved so that drift hits both alike. The warm
floor re-runs the same statements on the floor's own warehouse, the incremental model as
delete+insert of its incremental compiled SQL (what duckrec runs on the second build).

    .venv/bin/python bench/bench_engine.py [--reps 5] [--chain 500] [--keep DIR]

Exit code 0 when every cold case is within its bar, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BARS = {"jaffle": 1.3, "chain": 1.5, "dbt_jaffle": 1.3}
# modelled on dbt-labs' jaffle_shop_duckdb (dbt_project.yml, profiles.yml), from the tests
DBT_JAFFLE = Path(__file__).resolve().parents[1] / "tests" / "dbt_jaffle_shop"

# --------------------------------------------------------------------------- project generators

JAFFLE_PROJECT = """\
name: jaffle_bench
target: dev
targets:
  dev: {warehouse: warehouse.duckdb}
models:
  staging: {+schema: staging, +materialized: view}
  marts: {+schema: marts, +materialized: table}
seeds:
  raw_orders:
    +column_types: {id: INTEGER, user_id: INTEGER, order_date: DATE, status: VARCHAR}
  raw_payments:
    +column_types: {id: INTEGER, order_id: INTEGER, amount: INTEGER}
"""

JAFFLE_MODELS = {
    "sql/staging/stg_customers.sql": """\
with source as (
    {#-
    Normally we would select from the table here, but we are using seeds to load
    our data in this project
    #}
    select * from {{ ref('raw_customers') }}
),
renamed as (
    select id as customer_id, first_name, last_name
    from source
)
select * from renamed
""",
    "sql/staging/stg_orders.sql": """\
with source as (
    {#-
    Normally we would select from the table here, but we are using seeds to load
    our data in this project
    #}
    select * from {{ ref('raw_orders') }}
),
renamed as (
    select id as order_id, user_id as customer_id, order_date, status
    from source
)
select * from renamed
""",
    "sql/staging/stg_payments.sql": """\
with source as (
    {#-
    Normally we would select from the table here, but we are using seeds to load
    our data in this project
    #}
    select * from {{ ref('raw_payments') }}
),
renamed as (
    select id as payment_id, order_id, payment_method, amount / 100.0 as amount
    from source
)
select * from renamed
""",
    "sql/marts/customers.sql": """\
with customers as (
    select * from {{ ref('stg_customers') }}
),
orders as (
    select * from {{ ref('stg_orders') }}
),
payments as (
    select * from {{ ref('stg_payments') }}
),
customer_orders as (
    select customer_id, min(order_date) as first_order, max(order_date) as most_recent_order,
           count(order_id) as number_of_orders
    from orders group by customer_id
),
customer_payments as (
    select orders.customer_id, sum(amount) as total_amount
    from payments left join orders on payments.order_id = orders.order_id
    group by orders.customer_id
),
final as (
    select customers.customer_id, customers.first_name, customers.last_name,
           customer_orders.first_order, customer_orders.most_recent_order,
           coalesce(customer_orders.number_of_orders, 0) as number_of_orders,
           coalesce(customer_payments.total_amount, 0) as customer_lifetime_value
    from customers
    left join customer_orders on customers.customer_id = customer_orders.customer_id
    left join customer_payments on customers.customer_id = customer_payments.customer_id
)
select * from final
""",
    "sql/marts/orders.sql": """\
{{ config(materialized='incremental', unique_key='order_id') }}
{% set payment_methods = ['credit_card', 'coupon', 'bank_transfer', 'gift_card'] %}
with orders as (
    select * from {{ ref('stg_orders') }}
),
payments as (
    select * from {{ ref('stg_payments') }}
),
order_payments as (
    select order_id,
           {% for payment_method in payment_methods -%}
           sum(case when payment_method = '{{ payment_method }}' then amount else 0 end) as {{ payment_method }}_amount,
           {% endfor -%}
           sum(amount) as total_amount
    from payments group by order_id
),
final as (
    select orders.order_id, orders.customer_id, orders.order_date, orders.status,
           order_payments.credit_card_amount, order_payments.coupon_amount,
           order_payments.bank_transfer_amount, order_payments.gift_card_amount,
           coalesce(order_payments.total_amount, 0) as amount
    from orders left join order_payments on orders.order_id = order_payments.order_id
)
select * from final
{% if is_incremental() %}
where order_date >= (select max(order_date) from {{ this }})
{% endif %}
""",
}

STATUSES = ["placed", "shipped", "completed", "return_pending", "returned"]
METHODS = ["credit_card", "coupon", "bank_transfer", "gift_card"]

# 20 generic tests, dbt's syntax.
JAFFLE_SCHEMA = """\
version: 2
models:
  - name: stg_customers
    columns:
      - name: customer_id
        data_tests: [unique, not_null]
  - name: stg_orders
    columns:
      - name: order_id
        data_tests: [unique, not_null]
      - name: status
        description: '{{ doc("orders_status") }}'
        data_tests:
          - accepted_values: {values: [%(statuses)s]}
      - name: customer_id
        data_tests:
          - not_null
          - relationships: {to: ref('stg_customers'), field: customer_id}
  - name: stg_payments
    columns:
      - name: payment_id
        data_tests: [unique, not_null]
      - name: payment_method
        data_tests:
          - accepted_values: {values: [%(methods)s]}
      - name: order_id
        data_tests:
          - not_null
          - relationships: {to: ref('stg_orders'), field: order_id}
  - name: customers
    columns:
      - name: customer_id
        data_tests: [unique, not_null]
      - name: number_of_orders
        data_tests: [not_null]
  - name: orders
    columns:
      - name: order_id
        data_tests: [unique, not_null]
      - name: customer_id
        data_tests:
          - not_null
          - relationships: {to: ref('customers'), field: customer_id}
      - name: status
        data_tests:
          - accepted_values: {values: [%(statuses)s]}
"""


def gen_jaffle(root: Path, customers: int = 300, orders: int = 400, payments: int = 500) -> None:
    rng = random.Random(42)
    (root / "seeds").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "project.yml").write_text(JAFFLE_PROJECT)
    first = ["Ann", "Bob", "Cid", "Dee", "Eve", "Fay", "Gus", "Hal", "Ivy", "Jon"]
    last = ["A.", "B.", "C.", "D.", "E.", "F."]
    lines = ["id,first_name,last_name"] + [f"{i},{rng.choice(first)},{rng.choice(last)}"
                                          for i in range(1, customers + 1)]
    (root / "seeds" / "raw_customers.csv").write_text("\n".join(lines) + "\n")
    lines = ["id,user_id,order_date,status"] + [
        f"{i},{rng.randint(1, customers)},2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d},{rng.choice(STATUSES)}"
        for i in range(1, orders + 1)]
    (root / "seeds" / "raw_orders.csv").write_text("\n".join(lines) + "\n")
    lines = ["id,order_id,payment_method,amount"] + [
        f"{i},{rng.randint(1, orders)},{rng.choice(METHODS)},{rng.randint(100, 5000)}" for i in range(1, payments + 1)]
    (root / "seeds" / "raw_payments.csv").write_text("\n".join(lines) + "\n")
    for rel, text in JAFFLE_MODELS.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    (root / "models" / "docs.md").write_text(
        "{% docs orders_status %}\n\nOrders can be one of the following statuses: "
        + ", ".join(STATUSES) + ".\n\n{% enddocs %}\n")
    (root / "models" / "schema.yml").write_text(JAFFLE_SCHEMA % {
        "statuses": ", ".join(STATUSES), "methods": ", ".join(METHODS)})


CHAIN_PROJECT = """\
name: chain_bench
target: dev
targets:
  dev: {warehouse: warehouse.duckdb}
models:
  +materialized: %s
"""


def gen_chain(root: Path, n: int, materialized: str) -> None:
    (root / "sql").mkdir(parents=True)
    (root / "project.yml").write_text(CHAIN_PROJECT % materialized)
    (root / "sql" / "model_0.sql").write_text(
        "with base as (\n    select range as id, range % 7 as v from range(100)\n)\nselect * from base\n")
    for i in range(1, n):
        (root / "sql" / f"model_{i}.sql").write_text(
            f"with prev as (\n    select * from {{{{ ref('model_{i - 1}') }}}}\n)\n"
            f"select id, v + 1 as v from prev\n")


# --------------------------------------------------------------------------- the floor

FLOOR_SCRIPT = """\
import json, sys
import duckdb

db, plan = sys.argv[1], sys.argv[2]
with open(plan) as f:
    steps = json.load(f)
con = duckdb.connect(db)
for kind, sql in steps:
    if kind == "test":
        con.execute(sql).fetchall()
    else:
        con.execute(sql)
con.close()
"""


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def floor_plan(project: Path, incremental_run: bool) -> list[tuple[str, str]]:
    """The statements duckrec's last build ran, from target/run_results.json, manifest.json and compiled/."""
    manifest = json.loads((project / "target" / "manifest.json").read_text())
    results = json.loads((project / "target" / "run_results.json").read_text())["results"]
    nodes = manifest["nodes"]
    schemas_done: set[str] = set()
    steps: list[tuple[str, str]] = []
    for r in results:
        n = nodes[r["unique_id"]]
        n["relation"] = f'"{n["schema"]}"."{n["alias"]}"'  # relation_name has the database too
        if r["status"] == "reused":  # unchanged since the last build: duckrec ran nothing for it
            continue
        if r["status"] not in ("success", "pass"):
            raise SystemExit(f"duckrec build left {r['unique_id']} as {r['status']}: {r['message']}")
        if n["resource_type"] != "test":
            schema = n["config"].get("schema") or "main"
            if schema not in schemas_done:
                schemas_done.add(schema)
                steps.append(("ddl", f'create schema if not exists "{schema}"'))
        if n["resource_type"] == "seed":
            types = n["config"].get("column_types") or {}
            opts = ", types = {" + ", ".join(f"{_q(k)}: {_q(v)}" for k, v in types.items()) + "}" if types else ""
            path = project / n["original_file_path"]
            steps.append(("seed", f"create or replace table {n['relation']} as "
                                  f"select * from read_csv({_q(str(path))}, header = true{opts})"))
            continue
        sql = (project / n["compiled_path"]).read_text().strip().rstrip(";")
        if n["resource_type"] == "test":
            steps.append(("test", f"select count(*) from (\n{sql}\n) as failures"))
            continue
        mat = n["config"].get("materialized", "view")
        if mat == "ephemeral":
            continue
        if mat == "incremental" and incremental_run:
            key = n["config"]["unique_key"]
            steps.append(("model", f"create or replace temp table __incoming as\n{sql}\n"))
            steps.append(("model", f'delete from {n["relation"]} where "{key}" in (select "{key}" from __incoming)'))
            steps.append(("model", f"insert into {n['relation']} select * from __incoming"))
            continue
        kind = "view" if mat == "view" else "table"
        steps.append(("model", f"create or replace {kind} {n['relation']} as\n{sql}\n"))
    return steps


# --------------------------------------------------------------------------- timing


def duckrec_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("duckrec")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "duckrec.cli"]


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    t = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}) in {cwd}:\n{p.stderr[-3000:]}")
    return dt


def clean_warehouse(project: Path) -> None:
    for name in os.listdir(project):
        if ".duckdb" in name:  # warehouse.duckdb, or a dbt profile's path (jaffle_shop.duckdb)
            os.unlink(project / name)
    shutil.rmtree(project / "target", ignore_errors=True)


def bench_case(name: str, project: Path, work: Path, reps: int, env: dict[str, str]) -> dict:
    build = duckrec_cmd() + ["build", "--project-dir", str(project)]
    # One untimed build pair to produce the compiled SQL the floor runs (and to warm the page cache).
    clean_warehouse(project)
    timed(build, project, env)
    cold_plan = floor_plan(project, incremental_run=False)
    timed(build, project, env)
    warm_plan = floor_plan(project, incremental_run=True)
    (work / f"{name}_floor.py").write_text(FLOOR_SCRIPT)
    (work / f"{name}_cold.json").write_text(json.dumps(cold_plan))
    (work / f"{name}_warm.json").write_text(json.dumps(warm_plan))
    floor_db = work / f"{name}_floor.duckdb"
    floor = lambda plan: [sys.executable, str(work / f"{name}_floor.py"), str(floor_db), str(work / f"{name}_{plan}.json")]  # noqa: E731
    times: dict[str, list[float]] = {"duckrec_cold": [], "duckrec_warm": [], "floor_cold": [], "floor_warm": []}
    for i in range(reps):
        order = ["duckrec", "floor"] if i % 2 == 0 else ["floor", "duckrec"]
        for who in order:
            if who == "duckrec":
                clean_warehouse(project)
                times["duckrec_cold"].append(timed(build, project, env))
                times["duckrec_warm"].append(timed(build, project, env))
            else:
                for p in work.glob(f"{name}_floor.duckdb*"):
                    p.unlink()
                times["floor_cold"].append(timed(floor("cold"), work, env))
                times["floor_warm"].append(timed(floor("warm"), work, env))
    stmts = sum(1 for k, _ in cold_plan if k != "ddl")
    return {"times": times, "statements": stmts}


def machine() -> str:
    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"nproc {os.cpu_count()}, CPU {model}, {platform.system()} {platform.release()}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5, help="repetitions per case (median reported; default 5)")
    ap.add_argument("--chain", type=int, default=500, help="models in the chain (default 500)")
    ap.add_argument("--chain-materialized", choices=["table", "view"], default="table",
                    help="materialization of the chain models (default table)")
    ap.add_argument("--keep", metavar="DIR", help="generate the projects and floor scripts in DIR and keep them")
    ap.add_argument("--only", choices=["jaffle", "dbt_jaffle", "chain"], action="append",
                    help="run only this case (repeatable)")
    ap.add_argument("--json", metavar="FILE", help="also write the raw timings to FILE")
    args = ap.parse_args(argv)

    import duckdb

    print(f"python {platform.python_version()} ({sys.executable}), duckdb {duckdb.__version__}")
    print(f"machine: {machine()}")
    print(f"duckrec command: {' '.join(duckrec_cmd())} build; reps {args.reps}; "
          f"chain of {args.chain} {args.chain_materialized}s")
    env = {k: v for k, v in os.environ.items() if k != "DUCKREC_WAREHOUSE"}
    # An editable install never compiles duckrec's modules, and with PYTHONDONTWRITEBYTECODE
    # (set on some machines) every build would compile them again; a regular install
    # ships them compiled. Compile once, as `pip install .` would.
    import compileall

    compileall.compile_dir(str(Path(__file__).resolve().parents[1] / "src" / "duckrec"), quiet=1)
    print("duckrec modules byte-compiled first (as a regular install ships them)")

    if args.keep:
        base = Path(args.keep).resolve()
        if base.exists():
            shutil.rmtree(base)
        base.mkdir(parents=True)
    else:
        base = Path(tempfile.mkdtemp(prefix="duckrec-bench-"))
    try:
        cases = args.only or ["jaffle", "dbt_jaffle", "chain"]
        out: dict[str, dict] = {}
        for case in cases:
            project = base / case
            if case == "jaffle":
                gen_jaffle(project)
            elif case == "dbt_jaffle":
                shutil.copytree(DBT_JAFFLE, project)
            else:
                gen_chain(project, args.chain, args.chain_materialized)
            print(f"running {case} ...", flush=True)
            out[case] = bench_case(case, project, base, args.reps, env)

        print()
        head = f"{'case':<22} {'duckrec s':>10} {'floor s':>9} {'ratio':>6} {'bar':>5}  result"
        print(head)
        print("-" * len(head))
        ok = True
        for case, r in out.items():
            t = r["times"]
            for phase in ("cold", "warm"):
                d = statistics.median(t[f"duckrec_{phase}"])
                f = statistics.median(t[f"floor_{phase}"])
                ratio = d / f
                bar = BARS[case]
                passed = ratio <= bar
                if phase == "cold":
                    ok &= passed
                label = f"{case} ({r['statements']} stmts)" if phase == "cold" else f"{case} 2nd build"
                print(f"{label:<22} {d:>10.3f} {f:>9.3f} {ratio:>6.2f} {bar:>5.1f}  "
                      f"{'pass' if passed else 'FAIL'}")
        print()
        for case, r in out.items():
            for k, v in r["times"].items():
                print(f"  {case} {k:<13} " + " ".join(f"{x:.3f}" for x in v))
        if args.json:
            Path(args.json).write_text(json.dumps({"python": platform.python_version(),
                                                   "duckdb": duckdb.__version__, "machine": machine(),
                                                   "cases": out}, indent=1))
        if args.keep:
            print(f"\nprojects and floor scripts kept in {base}")
        return 0 if ok else 1
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
