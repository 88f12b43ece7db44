"""Incremental models: append, delete+insert on unique_key, NULL keys, on_schema_change."""
from __future__ import annotations

from engine_fixtures import TRACEBACK, project, query, run, warehouse

BASE = {
    "project.yml": """
        name: inc_shop
        targets: {dev: {warehouse: warehouse.duckdb}}
    """,
    "seeds/events.csv": "id,v\n1,a\n2,b\n",
    # runs after `inc` (path order): a failed transaction must not poison the nodes after it
    # invocation_id: a model that records the build runs in every build (it is never reused)
    "sql/zz_after.sql": "{{ config(materialized='table') }}\nselect 1 as a, '{{ invocation_id }}' as run_id",
}


def _model(body: str) -> dict[str, str]:
    return {"sql/inc.sql": body}


def _events(root, text: str) -> None:
    (root / "seeds/events.csv").write_text(text)


def test_append_without_unique_key_adds_rows(tmp_path, capsys):
    root = project(tmp_path, _model("""
        {{ config(materialized='incremental') }}
        select id, v from {{ ref('events') }}
        {% if is_incremental() %}where id > (select max(id) from {{ this }}){% endif %}
    """), base=BASE)
    assert run(capsys, root, "build").code == 0
    _events(root, "id,v\n1,a\n2,b\n3,c\n")
    assert run(capsys, root, "build").code == 0
    assert query(warehouse(root), "select id, v from main.inc order by id") == [(1, "a"), (2, "b"), (3, "c")]


def test_delete_insert_on_unique_key_updates_rows(tmp_path, capsys):
    root = project(tmp_path, _model("""
        {{ config(materialized='incremental', unique_key='id') }}
        select id, v from {{ ref('events') }}
    """), base=BASE)
    assert run(capsys, root, "build").code == 0
    _events(root, "id,v\n2,B\n3,c\n")
    result = run(capsys, root, "build")
    assert result.code == 0, result
    assert query(warehouse(root), "select id, v from main.inc order by id") == [(1, "a"), (2, "B"), (3, "c")]


def test_composite_unique_key(tmp_path, capsys):
    root = project(tmp_path, _model("""
        {{ config(materialized='incremental', unique_key=['id', 'v']) }}
        select id, v, 1 as n from {{ ref('events') }}
    """), base=BASE)
    assert run(capsys, root, "build").code == 0
    _events(root, "id,v\n1,a\n1,z\n")
    assert run(capsys, root, "build").code == 0
    assert query(warehouse(root), "select id, v from main.inc order by id, v") == [(1, "a"), (1, "z"), (2, "b")]


def test_null_in_unique_key_is_an_error_not_a_duplicate(tmp_path, capsys):
    root = project(tmp_path, _model("""
        {{ config(materialized='incremental', unique_key='id') }}
        select id, v from {{ ref('events') }}
    """), base=BASE)
    assert run(capsys, root, "build").code == 0
    _events(root, "id,v\n,x\n2,b\n")
    result = run(capsys, root, "build")
    assert result.code == 1
    assert "NULL in unique_key" in result.out and "1 row(s)" in result.out and "inc" in result.out
    assert 'OK    table "main"."zz_after"' in result.out and "transaction is aborted" not in result.out
    assert TRACEBACK not in result.text
    # no duplicates, no NULL row: the table is as the first build left it
    assert query(warehouse(root), "select id, v from main.inc order by id") == [(1, "a"), (2, "b")]


def test_null_in_unique_key_on_first_build(tmp_path, capsys):
    root = project(tmp_path, {**_model("""
        {{ config(materialized='incremental', unique_key='id') }}
        select id, v from {{ ref('events') }}
    """), "seeds/events.csv": "id,v\n,x\n"}, base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 1
    assert "NULL in unique_key" in result.out
    assert query(warehouse(root), "select count(*) from information_schema.tables where table_name = 'inc'") == [(0,)]
    # fixed data: the next build creates the table from scratch (no stale "it exists" belief)
    _events(root, "id,v\n1,x\n")
    result = run(capsys, root, "build")
    assert result.code == 0, result
    assert query(warehouse(root), "select id, v from main.inc") == [(1, "x")]


def test_on_schema_change_fail_is_the_default(tmp_path, capsys):
    root = project(tmp_path, _model("""
        {{ config(materialized='incremental', unique_key='id') }}
        select id, v from {{ ref('events') }}
    """), base=BASE)
    assert run(capsys, root, "build").code == 0
    (root / "sql/inc.sql").write_text("{{ config(materialized='incremental', unique_key='id') }}\n"
                                      "select id, v, 'new' as extra from {{ ref('events') }}")
    result = run(capsys, root, "build")
    assert result.code == 1
    assert "columns changed" in result.out and "extra" in result.out and "on_schema_change" in result.out
    assert "--full-refresh" in result.out
    assert 'OK    table "main"."zz_after"' in result.out
    assert query(warehouse(root), "select * from main.inc order by id") == [(1, "a"), (2, "b")]
    # --full-refresh rebuilds with the new column
    assert run(capsys, root, "build", "--full-refresh").code == 0
    assert query(warehouse(root), "select extra from main.inc limit 1") == [("new",)]


def test_on_schema_change_append_new_columns(tmp_path, capsys):
    root = project(tmp_path, _model("""
        {{ config(materialized='incremental', unique_key='id', on_schema_change='append_new_columns') }}
        select id, v from {{ ref('events') }}
    """), base=BASE)
    assert run(capsys, root, "build").code == 0
    (root / "sql/inc.sql").write_text(
        "{{ config(materialized='incremental', unique_key='id', on_schema_change='append_new_columns') }}\n"
        "select id, 42 as extra from {{ ref('events') }} where id = 2")
    result = run(capsys, root, "build")
    assert result.code == 0, result
    # v is kept (NULL for the new row), extra is added (NULL for the old row)
    assert query(warehouse(root), "select id, v, extra from main.inc order by id") == [(1, "a", None), (2, None, 42)]


def test_on_schema_change_sync_all_columns(tmp_path, capsys):
    root = project(tmp_path, _model("""
        {{ config(materialized='incremental', unique_key='id', on_schema_change='sync_all_columns') }}
        select id, v from {{ ref('events') }}
    """), base=BASE)
    assert run(capsys, root, "build").code == 0
    (root / "sql/inc.sql").write_text(
        "{{ config(materialized='incremental', unique_key='id', on_schema_change='sync_all_columns') }}\n"
        "select id, 42 as extra from {{ ref('events') }} where id = 2")
    result = run(capsys, root, "build")
    assert result.code == 0, result
    wh = warehouse(root)
    cols = [r[0] for r in query(wh, "select column_name from information_schema.columns "
                                    "where table_name = 'inc' order by ordinal_position")]
    assert cols == ["id", "extra"]
    assert query(wh, "select id, extra from main.inc order by id") == [(1, None), (2, 42)]


def test_bad_on_schema_change_value(tmp_path, capsys):
    root = project(tmp_path, _model("""
        {{ config(materialized='incremental', on_schema_change='sometimes') }}
        select 1 as id
    """), base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 2
    assert "sql/inc.sql" in result.err and "sometimes" in result.err and "append_new_columns" in result.err
