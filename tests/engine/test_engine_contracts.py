"""Enforced contracts: a model whose columns or types drift fails and keeps its last table."""
from engine_fixtures import query, run, write_project

BASE = {
    "project.yml": """
        name: c
        targets: {dev: {warehouse: wh.duckdb}}
        models: {+materialized: table}
    """,
    "sql/m.sql": "select 1::bigint as id, 'a' as name",
    "models/m.yml": """
        version: 2
        models:
          - name: m
            config: {contract: {enforced: true}}
            columns:
              - {name: id, data_type: bigint}
              - {name: name, data_type: varchar}
    """,
}


def test_a_model_that_keeps_its_contract_builds(tmp_path, capsys):
    write_project(tmp_path, BASE)
    assert run(capsys, tmp_path, "build").code == 0
    assert query(tmp_path / "wh.duckdb", "select id, name from main.m") == [(1, "a")]


def test_a_drifted_type_or_column_fails_and_keeps_the_last_table(tmp_path, capsys):
    write_project(tmp_path, BASE)
    assert run(capsys, tmp_path, "build").code == 0
    write_project(tmp_path, {"sql/m.sql": "select 2::integer as id, 'b' as name, 3 as extra"})
    result = run(capsys, tmp_path, "build")
    assert result.code == 1
    assert "breaks its enforced contract" in result.out
    assert "column id: expected BIGINT, found INTEGER" in result.out
    assert "columns not in the contract ['extra']" in result.out
    assert query(tmp_path / "wh.duckdb", "select id, name from main.m") == [(1, "a")]
