"""A seed fed by a glob of files that grows: new files appended, old ones not read again."""
from __future__ import annotations

from engine_fixtures import project, query, run, warehouse

BASE = {
    "project.yml": """
        name: nightly
        targets: {dev: {warehouse: warehouse.duckdb}}
        seeds:
          ratings:
            +file: events/*.csv
            +column_types: {user: BIGINT, item: BIGINT, value: DOUBLE}
    """,
    "events/day1.csv": "user,item,value\n1,10,4.0\n2,10,3.5\n",
    "sql/per_user.sql": "{{ config(materialized='table') }}\n"
                        "select user, count(*) as n, count(value) as n_valued from {{ ref('ratings') }} group by user",
}


def _files(root):
    return query(warehouse(root), "select path, rows, malformed from _duckrec.seed_files order by path")


def test_new_files_are_appended_and_loaded_files_not_read_again(tmp_path, capsys):
    root = project(tmp_path, {}, base=BASE)
    assert run(capsys, root, "build").code == 0
    (root / "events/day2.csv").write_text("user,item,value\n1,11,5.0\n3,12,2.0\n")
    r = run(capsys, root, "build")
    assert r.code == 0, r
    assert "loaded events/day2.csv: 2 rows" in r.out and "day1.csv" not in r.out
    assert _files(root) == [("events/day1.csv", 2, 0), ("events/day2.csv", 2, 0)]
    assert query(warehouse(root), "select user, n from main.per_user order by user") == [(1, 2), (2, 1), (3, 1)]
    # nothing new: the seed and its model are reused
    r = run(capsys, root, "build")
    assert r.code == 0 and r.out.count("REUSE") == 2, r


def test_parquet_files_join_csv_files(tmp_path, capsys):
    import duckdb

    root = project(tmp_path, {"project.yml": BASE["project.yml"].replace("events/*.csv", "events/*")}, base=BASE)
    assert run(capsys, root, "build").code == 0
    duckdb.sql("select 4::bigint as user, 13::bigint as item, 1.0::double as value").write_parquet(
        str(root / "events/day2.parquet"))
    assert run(capsys, root, "build").code == 0
    assert query(warehouse(root), "select user, item, value from raw.ratings order by user") == [
        (1, 10, 4.0), (2, 10, 3.5), (4, 13, 1.0)]


def test_malformed_rows_are_kept_as_nulls_and_counted(tmp_path, capsys):
    root = project(tmp_path, {}, base=BASE)
    assert run(capsys, root, "build").code == 0
    (root / "events/day2.csv").write_text("user,item,value\n5,10,good\n6,10,2.0\n7,10,1.0,extra,fields\n8\n")
    r = run(capsys, root, "build")
    assert r.code == 0, r
    assert "3 malformed row(s) (lines 2, 4, 5)" in r.out and "WARN" in r.out, r.out
    assert ("events/day2.csv", 4, 3) in _files(root)
    # the bad value is NULL (user and item kept); a line with too many or too few fields is all NULL
    assert query(warehouse(root), "select user, item, value from raw.ratings where user > 2 or user is null "
                                  "order by all") == [(5, 10, None), (6, 10, 2.0), (None, None, None),
                                                      (None, None, None)]


def test_a_changed_or_vanished_file_fails_the_seed_and_keeps_the_warehouse(tmp_path, capsys):
    root = project(tmp_path, {}, base=BASE)
    assert run(capsys, root, "build").code == 0
    (root / "events/day1.csv").write_text("user,item,value\n1,10,4.0\n2,10,3.0\n")
    r = run(capsys, root, "build")
    assert r.code == 1 and "changed since it was loaded: events/day1.csv" in r.out and "--full-refresh" in r.out, r
    assert query(warehouse(root), "select count(*) from raw.ratings where value = 3.5") == [(1,)]
    (root / "events/day1.csv").unlink()
    (root / "events/day3.csv").write_text("user,item,value\n9,10,4.0\n")
    r = run(capsys, root, "build")
    assert r.code == 1 and "gone now: events/day1.csv" in r.out, r
    r = run(capsys, root, "build", "--full-refresh")
    assert r.code == 0, r
    assert _files(root) == [("events/day3.csv", 1, 0)]
    assert query(warehouse(root), "select user from raw.ratings") == [(9,)]
