"""Seeds: declared types, bad rows (file, line, column), missing and empty files, header trimming."""
from __future__ import annotations

from engine_fixtures import TRACEBACK, project, query, run, warehouse

BASE = {
    "project.yml": """
        name: seed_shop
        targets: {dev: {warehouse: warehouse.duckdb}}
        seeds:
          prices:
            +column_types: {item_id: BIGINT, price: DOUBLE, day: DATE}
    """,
    "seeds/prices.csv": "item_id,price,day,label\n1,1.5,2024-01-01,a\n2,2,2024-01-02,b\n",
    "sql/priced.sql": "{{ config(materialized='table') }}\nselect * from {{ ref('prices') }}",
}


def test_declared_and_inferred_types(tmp_path, capsys):
    root = project(tmp_path, {}, base=BASE)
    result = run(capsys, root, "seed")
    assert result.code == 0, result
    assert "2 rows" in result.out
    types = dict(query(warehouse(root), "select column_name, data_type from information_schema.columns "
                                        "where table_schema = 'raw' and table_name = 'prices'"))
    assert types == {"item_id": "BIGINT", "price": "DOUBLE", "day": "DATE", "label": "VARCHAR"}
    # `seed` loads seeds only
    assert query(warehouse(root), "select count(*) from information_schema.tables where table_name = 'priced'") == [(0,)]


def test_header_whitespace_is_trimmed(tmp_path, capsys):
    root = project(tmp_path, {"seeds/prices.csv": "item_id , price,day ,label  \n1,1.5,2024-01-01,a\n"}, base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 0, result
    assert query(warehouse(root), "select item_id, price, day, label from main.priced")[0][:2] == (1, 1.5)


def test_malformed_row_names_file_line_and_column_and_stops_downstream(tmp_path, capsys):
    root = project(tmp_path, {
        "seeds/prices.csv": "item_id,price,day,label\n1,1.5,2024-01-01,a\n2,two,2024-01-02,b\n",
    }, base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 1
    assert "seeds/prices.csv:3" in result.out
    assert "line 3" in result.out and "column price" in result.out and "two" in result.out
    assert "SKIP" in result.out and "priced" in result.out
    assert TRACEBACK not in result.text
    wh = warehouse(root)
    assert query(wh, "select count(*) from information_schema.tables where table_name in ('prices', 'priced')") \
        == [(0,)]


def test_bad_row_keeps_the_previous_seed_table(tmp_path, capsys):
    root = project(tmp_path, {}, base=BASE)
    assert run(capsys, root, "build").code == 0
    (root / "seeds/prices.csv").write_text("item_id,price,day,label\n9,oops,2024-01-01,z\n")
    assert run(capsys, root, "build").code == 1
    wh = warehouse(root)
    assert query(wh, "select item_id from raw.prices order by 1") == [(1,), (2,)]
    assert query(wh, "select item_id from main.priced order by 1") == [(1,), (2,)]


def test_missing_seed_file(tmp_path, capsys):
    base = dict(BASE)
    base["project.yml"] = """
        name: seed_shop
        targets: {dev: {warehouse: warehouse.duckdb}}
        seeds:
          prices:
            +file: data/nowhere.csv
    """
    root = project(tmp_path, {}, base=base)
    result = run(capsys, root, "build")
    # checked before anything runs: a project error naming the seed and the file, no node ran
    assert result.code == 2
    assert "seed prices: expected its file at 'data/nowhere.csv'" in result.err and "found none" in result.err
    assert "SKIP" not in result.out and " OK " not in result.out
    assert TRACEBACK not in result.text


def test_seed_configured_without_any_file(tmp_path, capsys):
    root = project(tmp_path, {
        "project.yml": """
            name: seed_shop
            seeds:
              ghosts:
                +column_types: {id: INTEGER}
        """,
    })
    result = run(capsys, root, "build")
    assert result.code == 2
    assert "ghosts" in result.err and "ghosts.csv" in result.err
    assert TRACEBACK not in result.text


def test_empty_seed_file(tmp_path, capsys):
    root = project(tmp_path, {"seeds/prices.csv": ""}, base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 1
    assert "seeds/prices.csv" in result.out and "empty" in result.out
    assert TRACEBACK not in result.text


def test_header_only_seed_is_an_empty_table(tmp_path, capsys):
    root = project(tmp_path, {"seeds/prices.csv": "item_id,price,day,label\n"}, base=BASE)
    result = run(capsys, root, "seed")
    assert result.code == 0, result
    assert query(warehouse(root), "select count(*) from raw.prices") == [(0,)]


def test_column_types_naming_an_unknown_column(tmp_path, capsys):
    root = project(tmp_path, {"seeds/prices.csv": "item_id,cost,day,label\n1,1.5,2024-01-01,a\n"}, base=BASE)
    result = run(capsys, root, "seed")
    assert result.code == 1
    assert "price" in result.out and "header" in result.out and "cost" in result.out


def test_row_with_too_many_fields_names_its_line(tmp_path, capsys):
    root = project(tmp_path, {"seeds/prices.csv": "item_id,price,day,label\n1,1.5,2024-01-01,a\n2,2,2024-01-02,b,extra\n"},
                   base=BASE)
    result = run(capsys, root, "seed")
    assert result.code == 1
    assert "seeds/prices.csv:3" in result.out and "line 3" in result.out
