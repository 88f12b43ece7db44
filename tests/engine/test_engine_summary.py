"""A node's `summary` query: its rows are printed in the build's end summary."""
from __future__ import annotations

import json

from engine_fixtures import TRACEBACK, project, query, run

BASE = {
    "project.yml": """
        name: summ
        models:
          +materialized: table
          checks: {+summary: "select count(*) || ' rows' from {{ this }}"}
    """,
    "seeds/events.csv": "id,kind\n1,ok\n2,bad\n3,bad\n4,ok\n",
    "sql/rejected.sql": """
        {{ config(summary="select format('{:,} of {:,} events ({:.1f}%): ' || string_agg(kind || ' ' || n, ', '),
                   sum(n)::int, (select count(*) from " ~ ref('events') ~ ")::int,
                   100.0 * sum(n) / (select count(*) from " ~ ref('events') ~ ")) from (
                   select kind, count(*) as n from {{ this }} group by kind)") }}
        select * from {{ ref('events') }} where kind = 'bad'
    """,
    "sql/checks/folder_level.sql": "select 1 as x union all select 2",
}


def test_summary_rows_are_printed_after_the_build(tmp_path, capsys):
    root = project(tmp_path, {}, base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 0, result
    tail = result.out.split("rows in")[-1]
    assert "main.rejected: 2 of 4 events (50.0%): bad 2\n" in tail
    assert "main.folder_level: 2 rows\n" in tail
    assert tail.index("main.rejected:") < tail.index("Finished build")


def test_summary_lines_are_json_events_and_a_failing_query_is_a_warning(tmp_path, capsys):
    root = project(tmp_path, {
        "models/props.yml": """
            version: 2
            models:
              - name: folder_level
                config: {summary: "select count(*) from {{ ref('rejected') }}"}
        """,
    }, base=BASE)
    result = run(capsys, root, "build", "--log-format", "json")
    assert result.code == 0, result
    events = [json.loads(line) for line in result.out.splitlines()]
    notes = {e["node"]: e["message"] for e in events if e["event"] == "node_summary"}
    assert notes["model.rejected"] == "main.rejected: 2 of 4 events (50.0%): bad 2"
    # folder_level does not depend on rejected: its summary may not read it
    assert notes["model.folder_level"].startswith("main.folder_level: warning: its summary query failed")
    assert "rejected is not among the dependencies of folder_level" in notes["model.folder_level"]
    assert TRACEBACK not in result.text


def test_no_summary_for_a_node_that_failed(tmp_path, capsys):
    root = project(tmp_path, {"sql/rejected.sql": "{{ config(summary='select 1') }}\nselect nonsense"}, base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 1
    assert "main.rejected:" not in result.out


def test_a_python_models_summary_lines_and_every_summary_are_kept_in_node_runs(tmp_path, capsys):
    root = project(tmp_path, {
        "python_models/encoded.py": """
def model(dbt, session):
    n = len(dbt.ref("events").fetchall())
    dbt.summary(f"encoded {n - 1} of {n} texts")
    return dbt.ref("events")
""",
    }, base=BASE)
    first = run(capsys, root, "build")
    assert first.code == 0, first
    assert "main.encoded: encoded 3 of 4 texts\n" in first.out.split("rows in")[-1]
    second = run(capsys, root, "build")  # everything reused: a summary query still runs, a Python model's does not
    assert second.code == 0, second
    kept = query(root / "warehouse.duckdb", """
        select r.run_id, n.name, n.status, n.summary from _duckrec.node_runs n join _duckrec.runs r using (run_id)
        where n.name in ('encoded', 'rejected') order by r.started_at, n.name""")
    assert [row[1:] for row in kept] == [
        ("encoded", "success", "main.encoded: encoded 3 of 4 texts"),
        ("rejected", "success", "main.rejected: 2 of 4 events (50.0%): bad 2"),
        ("encoded", "reused", None),
        ("rejected", "reused", "main.rejected: 2 of 4 events (50.0%): bad 2"),
    ]
