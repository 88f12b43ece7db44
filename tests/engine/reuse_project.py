"""A tiny project that exercises everything reuse must get right, for the reuse property
test: a glob seed that grows by files and a plain seed that gets corrected, SQL tables,
an incremental model with a unique key, a view, an ephemeral model, a macro, vars (one of
them a split rule), YAML metadata, and a Python model that imports a project helper that
imports another. Flag files make the Python model interrupt itself (Ctrl-C) or die (kill -9)
mid-build."""
from __future__ import annotations

import textwrap
from pathlib import Path

# the variants each editable piece can take; index 0 is the starting point
P_SQL = ["select 1 as x", "select 2 as x", "select 3 as x union all select 4"]
C_SQL = ["select x * 10 as y from {{ ref('p') }}", "select x * 100 as y from {{ ref('p') }}"]
BROKEN_SQL = "select error('injected failure') as x"
MACRO = ["{% macro bucket(col) %}({{ col }} % 3){% endmacro %}",
         "{% macro bucket(col) %}({{ col }} % 5){% endmacro %}"]
HELPER_B = ["K = 5\n", "K = 7\n"]
TAGS = ["[core]", "[core, nightly]"]
SPLITS = ["leave_last_out", "temporal"]

PY_MODEL = '''
import os
import signal
from pathlib import Path

import polars as pl

import helper_a

ROOT = Path(__file__).resolve().parents[2]


def model(dbt, session):
    dbt.config(materialized="table")
    if (ROOT / "interrupt.flag").exists():
        raise KeyboardInterrupt
    if (ROOT / "kill.flag").exists():
        os.kill(os.getpid(), signal.SIGKILL)
    c = dbt.ref("c").pl()
    return c.with_columns(z=pl.col("y") + helper_a.value())
'''


def project_yml(factor: int, split: str, tags: str) -> str:
    return textwrap.dedent(f"""\
        name: reuse_property
        target: dev
        targets:
          dev: {{warehouse: warehouse.duckdb}}
        vars:
          factor: {factor}
          split_rule: {split}
        models:
          core: {{+schema: core, +materialized: table}}
        seeds:
          events:
            +file: events/*.csv
        """) + f"# tags of model c live in models/props.yml: {tags}\n"


def props_yml(tags: str) -> str:
    return textwrap.dedent(f"""\
        version: 2
        models:
          - name: c
            description: Ten times p.
            config: {{tags: {tags}, persist_docs: {{relation: true, columns: true}}}}
            columns:
              - name: y
                description: x times ten.
        """)


FILES = {
    "seeds/labels.csv": "item,label\n10,a\n11,b\n12,c\n",
    "events/day01.csv": "user,item,value\n1,10,4.0\n1,11,3.0\n1,12,5.0\n2,10,2.0\n2,12,1.0\n2,11,4.5\n",
    "sql/core/p.sql": P_SQL[0],
    "sql/core/c.sql": C_SQL[0],
    "sql/core/scored.sql": (
        "{{ config(materialized='incremental', unique_key=['user_id', 'item']) }}\n"
        "select \"user\" as user_id, item, value * {{ var('factor') }} as v, {{ bucket('item') }} as b\n"
        "from {{ ref('events') }}"),
    "sql/core/labelled.sql": (
        "{{ config(materialized='view') }}\n"
        "select s.user_id, s.item, s.v, l.label from {{ ref('scored') }} s join {{ ref('labels') }} l using (item)"),
    "sql/core/ranked.sql": (
        "{{ config(materialized='ephemeral') }}\n"
        "select *, row_number() over (partition by user_id order by item) as position from {{ ref('labelled') }}"),
    "sql/core/splits.sql": (
        "select user_id, item, label, case when '{{ var('split_rule') }}' = 'temporal' and item >= 12 then 'test'\n"
        "  when position = max(position) over (partition by user_id) then 'test' else 'train' end as split\n"
        "from {{ ref('ranked') }}"),
    "sql/core/final.sql": "select count(*) as n, sum(z) as s from {{ ref('py_model') }}",
    "sql/macros/m.sql": MACRO[0],
    "python_models/core/py_model.py": PY_MODEL,
    "helper_a.py": "from helpers import helper_b\n\n\ndef value():\n    return helper_b.K + 1\n",
    "helpers/__init__.py": "",
    "helpers/helper_b.py": HELPER_B[0],
    "project.yml": project_yml(10, SPLITS[0], TAGS[0]),
    "models/props.yml": props_yml(TAGS[0]),
}

MODELS = ["p", "c", "scored", "labelled", "splits", "py_model", "final"]
SELECTORS = [name for m in MODELS for name in (m, f"+{m}", f"{m}+")] + ["labels", "events", "tag:core"]


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
