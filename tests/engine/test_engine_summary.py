"""A node's `summary` query: its rows are printed in the build's end summary."""
from __future__ import annotations

import json

from engine_fixtures import TRACEBACK, project, run

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
