"""The world around a build: full or read-only disks, a directory or a damaged file at the
warehouse path, a failed node (all or nothing), and user mistakes in seeds, SQL and vars.
Each ends in one message naming the user's path, a documented exit code, no private copy
left behind and the published warehouse untouched."""
from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from engine_fixtures import TRACEBACK, project, query, run, warehouse
from test_engine_warehouse import BASE, _set_numbers


def _built(tmp_path, capsys) -> Path:
    root = project(tmp_path, {}, base=BASE)
    assert run(capsys, root, "build").code == 0
    return root


def _no_leftovers(folder: Path) -> None:
    left = [p.name for p in folder.iterdir() if ".building" in p.name]
    assert not left, left


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MB tmpfs (needs root and mount; skipped elsewhere), unmounted afterwards."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        if os.environ.get("CI"):  # CI runs as root: a disk test that cannot run there hides a defect
            pytest.fail("could not mount a 16 MB tmpfs as root: the full-disk tests need mount -t tmpfs")
        pytest.skip("mounting a small tmpfs needs root")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(folder: Path, leave: int) -> None:
    """Fill the file system holding `folder` until about `leave` bytes are free."""
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize
    with open(folder / "filler", "wb") as f:
        f.write(b"\0" * max(0, free - leave))


def _built_on(disk: Path, tmp_path, capsys, monkeypatch, files: dict[str, str] | None = None):
    """A project whose warehouse is on `disk`, built once: (root, warehouse, its bytes)."""
    root = project(tmp_path / "p", files or {}, base=BASE)
    monkeypatch.setenv("DUCKREC_WAREHOUSE", str(disk / "warehouse.duckdb"))
    assert run(capsys, root, "build").code == 0
    wh = disk / "warehouse.duckdb"
    return root, wh, wh.read_bytes()


def test_disk_full_during_the_copy(tmp_path, capsys, small_disk, monkeypatch):
    root, wh, before = _built_on(small_disk, tmp_path, capsys, monkeypatch)
    _fill(small_disk, leave=64 * 1024)
    result = run(capsys, root, "build")
    assert result.code == 4, result
    assert "No space left on device while copying" in result.err and str(wh) in result.err
    assert "Free space" in result.err
    assert ".building" not in result.err and TRACEBACK not in result.text
    _no_leftovers(small_disk)
    assert wh.read_bytes() == before
    (small_disk / "filler").unlink()
    assert run(capsys, root, "build").code == 0  # nothing was left to clean up by hand


def test_disk_full_while_building(tmp_path, capsys, small_disk, monkeypatch):
    root, wh, before = _built_on(small_disk, tmp_path, capsys, monkeypatch, {
        "sql/big.sql": "select range as n, repeat('x', 100) || range as s from range({{ var('rows', 1) }})"})
    result = run(capsys, root, "build", "--vars", "{rows: 3000000}")
    assert result.code == 4, result
    assert "No space left on device while" in result.err and str(wh) in result.err
    assert TRACEBACK not in result.text
    _no_leftovers(small_disk)
    assert wh.read_bytes() == before
    assert query(wh, "select count(*) from main.big") == [(1,)]


def test_read_only_folder(tmp_path, capsys, small_disk, monkeypatch):
    root, wh, before = _built_on(small_disk, tmp_path, capsys, monkeypatch)
    assert subprocess.run(["mount", "-o", "remount,ro", str(small_disk)]).returncode == 0
    result = run(capsys, root, "build")
    assert result.code == 4, result
    assert "Read-only file system" in result.err and str(wh) in result.err and "writable" in result.err
    assert TRACEBACK not in result.text
    assert wh.read_bytes() == before
    shown = run(capsys, root, "show", "-i", "select sum(n) as s from main.numbers", "--format", "csv")
    assert shown.code == 0 and shown.out.split() == ["s", "6"]  # still readable


def test_a_directory_at_the_warehouse_path(tmp_path, capsys):
    root = project(tmp_path, {}, base=BASE)
    (root / "warehouse.duckdb").mkdir()
    for args in (["build"], ["show", "-i", "select 1"]):
        result = run(capsys, root, *args)
        assert result.code == 4, result
        assert "is a directory" in result.err and "warehouse.duckdb" in result.err and TRACEBACK not in result.text
    assert (root / "warehouse.duckdb").is_dir()


@pytest.mark.parametrize("damage", ["garbage", "empty", "half", "tail"])
def test_a_damaged_warehouse_is_found_before_the_build_runs(tmp_path, capsys, damage):
    root = project(tmp_path, {
        "sql/bulk.sql": "select range as n, md5(range::varchar) as s from range(300000)",
    }, base=BASE)
    assert run(capsys, root, "build").code == 0
    wh = warehouse(root)
    data = wh.read_bytes()
    wh.write_bytes({"garbage": b"this is not a database" * 1000, "empty": b"", "half": data[:len(data) // 2],
                    "tail": data[:len(data) - 262144]}[damage])
    damaged = wh.read_bytes()
    marker = tmp_path / "marker"
    os.environ["DUCKREC_TEST_MARKER"] = str(marker)
    try:
        result = run(capsys, root, "build")
    finally:
        del os.environ["DUCKREC_TEST_MARKER"]
    assert result.code == 4, result
    assert f"{wh}: the warehouse file is damaged" in result.err and ".building" not in result.err
    assert "move it aside" in result.err and TRACEBACK not in result.text
    assert not marker.exists(), result  # no model ran
    _no_leftovers(root)
    assert wh.read_bytes() == damaged


def test_vars_not_a_mapping(tmp_path, capsys):
    root = project(tmp_path, {"project.yml": BASE["project.yml"] + "\n        vars: 7\n"}, base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 2 and "project.yml" in result.err and "vars: expected a mapping" in result.err
    assert "found 7" in result.err and TRACEBACK not in result.text


# ------------------------------------------------------------------ all or nothing


def test_a_build_with_a_failed_node_publishes_nothing(tmp_path, capsys):
    root = _built(tmp_path, capsys)
    wh = warehouse(root)
    _set_numbers(root, [10, 20])
    (root / "sql/after_slow.sql").write_text("select count(*) as n from {{ ref('slow') }} where no_such_column")
    result = run(capsys, root, "build")
    assert result.code == 1
    assert "Nothing was published" in result.out and "--publish-partial" in result.out
    # readers see yesterday's numbers with yesterday's downstream, never a mix
    assert query(wh, "select sum(n) from main.numbers") == [(6,)]
    assert query(wh, "select n from main.after_slow") == [(3,)]
    runs = query(wh, "select status, n_errors from _duckrec.runs order by started_at")
    assert runs == [("success", 0), ("error", 1)]  # the failed run is on record
    _no_leftovers(root)
    partial = run(capsys, root, "build", "--publish-partial")
    assert partial.code == 1 and "Nothing was published" not in partial.out
    assert query(wh, "select sum(n) from main.numbers") == [(30,)]


# ------------------------------------------------------------------ user mistakes


def test_a_seed_with_an_unterminated_quote_names_the_line(tmp_path, capsys):
    root = project(tmp_path, {"seeds/numbers_seed.csv": 'n\n1\n"2\n3\n4\n'}, base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 1
    assert "seeds/numbers_seed.csv:3:" in result.out and "line 3" in result.out and "never closed" in result.out
    assert "sniff" not in result.out.lower()


def test_sql_error_lines_match_the_compiled_file(tmp_path, capsys):
    root = project(tmp_path, {
        "sql/after_slow.sql": "-- header\n\nselect n\nfrom {{ ref('slow') }}\nwhere no_such_column = 1\n",
    }, base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 1
    assert "LINE 5: where no_such_column = 1" in result.out, result
    compiled = (root / "target/compiled/sql/after_slow.sql").read_text().splitlines()
    assert compiled[4] == "where no_such_column = 1"


VARS_PROJECT = {
    "project.yml": BASE["project.yml"] + """
        vars_schema: vars_schema.yml
        vars:
          ks: [5, 10]
          knn_neighbours: 20
          lm: {epochs: 3, cell: gru}
    """,
    "vars_schema.yml": """
        type: object
        properties:
          ks: {type: array, minItems: 1, items: {type: integer, minimum: 1}}
          knn_neighbours: {type: integer, minimum: 1, description: neighbours kept per item}
          lm:
            type: object
            properties:
              epochs: {type: integer, minimum: 1}
              cell: {enum: [gru, lstm]}
    """,
}


@pytest.mark.parametrize("given, expected", [
    ("{ks: [0]}", "vars.ks[0]: expected an integer >= 1, found 0"),
    ("{knn_neighbours: -3}", "vars.knn_neighbours: expected an integer >= 1 (neighbours kept per item), found -3"),
    ("{lm: {epochs: 0}}", "vars.lm.epochs: expected an integer >= 1, found 0"),
    ("{lm: {cell: rnn}}", "vars.lm.cell: expected one of ['gru', 'lstm'], found 'rnn'"),
    ("{ks: 10}", "vars.ks: expected a list"),
])
def test_vars_are_checked_against_the_projects_schema_before_anything_runs(tmp_path, capsys, given, expected):
    files = {**VARS_PROJECT, "project.yml": VARS_PROJECT["project.yml"].replace("name: wh_shop",
                                                                                  f"name: wh_{uuid.uuid4().hex[:6]}")}
    root = project(tmp_path, files, base=BASE)
    result = run(capsys, root, "build", "--vars", given)
    assert result.code == 2, result
    assert expected in result.err and "vars_schema.yml" in result.err
    assert not warehouse(root).exists()  # nothing ran
    assert run(capsys, root, "build").code == 0  # the project's own vars pass


def test_a_file_created_during_the_first_build_is_never_replaced(tmp_path, capsys):
    """The first build has no published file to lock: a DuckDB client that opens the path
    mid-build creates one, and the publish must not rename over what it wrote."""
    from engine_fixtures import project, query, run

    root = project(tmp_path, {
        "python_models/opener.py": """
            import duckdb
            from pathlib import Path

            def model(dbt, session):
                dbt.config(materialized="table")
                client = duckdb.connect(str(Path(__file__).resolve().parents[1] / "warehouse.duckdb"))
                client.execute("create table main.client_notes as select 'keep me' as note")
                client.close()
                return session.sql("select 1 as x").pl()
        """})
    r = run(capsys, root, "build")
    assert r.code == 3, r
    assert "was created while this first build ran" in r.text and "nothing was published" in r.text
    assert query(root / "warehouse.duckdb", "select note from main.client_notes") == [("keep me",)]
    assert not list(root.glob("warehouse.duckdb.building*"))


def test_a_signal_during_the_rename_never_says_nothing_was_published(tmp_path, capsys, monkeypatch):
    import signal

    from duckrec.warehouse import build as wh
    from engine_fixtures import project, query, run

    root = project(tmp_path, {"sql/numbers.sql": "select 1 as x"})
    original = wh.Build.publish

    def publish_then_sigterm(self):
        original(self)
        os.kill(os.getpid(), signal.SIGTERM)  # lands right after the rename

    monkeypatch.setattr(wh.Build, "publish", publish_then_sigterm)
    r = run(capsys, root, "build")
    assert r.code == 130, r
    assert "nothing was published" not in r.text and "after the build was published" in r.text, r
    assert query(root / "warehouse.duckdb", "select x from main.numbers") == [(1,)]
