"""BI tools on the warehouse file: read-write clients (alive, crashed, connecting mid-build),
leftover logs, `show` that cannot write, in-process reconnects, symlinked paths."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from engine_fixtures import TRACEBACK, project, query, run, warehouse
from test_engine_warehouse import BASE, _set_numbers, _start_slow_build

CLIENT = textwrap.dedent("""
    import os, sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
    print("connected", flush=True)
    for line in sys.stdin:
        line = line.strip()
        if line == "die":
            os._exit(9)              # a crash: no close, no checkpoint
        if line == "close":
            con.close()
            print("closed", flush=True)
            break
        try:
            print(con.execute(line).fetchall(), flush=True)
        except Exception as e:
            print("error:", e, flush=True)
""")


class Client:
    """A DuckDB client in its own process (a BI tool), driven line by line."""

    def __init__(self, db: Path, mode: str = "rw"):
        self.proc = subprocess.Popen([sys.executable, "-c", CLIENT, str(db), mode], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "connected", self.proc.stderr.read()

    def sql(self, statement: str) -> str:
        self.proc.stdin.write(statement + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def die(self) -> None:
        self.proc.stdin.write("die\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout=30)
        assert self.proc.returncode == -9 or self.proc.returncode == 9

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _built(tmp_path, capsys) -> Path:
    root = project(tmp_path, {}, base=BASE)
    assert run(capsys, root, "build").code == 0
    return root


def _in_fresh_process(db: Path, sql: str) -> subprocess.CompletedProcess:
    code = f"import duckdb; print(duckdb.connect({str(db)!r}, read_only=True).execute({sql!r}).fetchall())"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_a_connected_read_write_client_is_refused_and_what_it_writes_is_kept(tmp_path, capsys):
    # the reproduction: a read-write connection open across a build, writes, is killed
    root = _built(tmp_path, capsys)
    wh = warehouse(root)
    client = Client(wh)
    try:
        _set_numbers(root, [5])
        refused = run(capsys, root, "build", "-s", "numbers")
        assert refused.code == 3, refused
        assert "read-write DuckDB connection is open" in refused.err and f"pid {client.proc.pid}" in refused.err
        assert "--wait" in refused.err and TRACEBACK not in refused.text
        assert not (root / "warehouse.duckdb.building").exists()
        blocked = run(capsys, root, "show", "numbers")  # DuckDB lets nobody else read meanwhile
        assert blocked.code == 3 and "read-write DuckDB connection is open" in blocked.err, blocked
        assert client.sql("create table main.bi_notes as select 'kept' as note") == "[(1,)]"
        client.die()
    finally:
        client.close()
    assert (root / "warehouse.duckdb.wal").exists()  # what it committed is in its log
    shown = run(capsys, root, "show", "-i", "select note from main.bi_notes", "--format", "csv")
    assert shown.code == 0 and shown.out.split() == ["note", "kept"], shown
    built = run(capsys, root, "build")
    assert built.code == 0, built
    assert query(wh, "select note from main.bi_notes") == [("kept",)]  # folded into the new build
    assert query(wh, "select sum(n) from main.numbers") == [(5,)]
    assert not (root / "warehouse.duckdb.wal").exists()
    fresh = _in_fresh_process(wh, "select note from main.bi_notes")
    assert fresh.returncode == 0 and "kept" in fresh.stdout, fresh.stderr


def test_wait_builds_once_the_read_write_client_closes(tmp_path, capsys):
    root = _built(tmp_path, capsys)
    client = Client(warehouse(root))
    try:
        proc = subprocess.Popen([sys.executable, "-m", "duckrec.cli", "build", "--wait", "--full-refresh",
                                 "--project-dir", str(root)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        assert proc.poll() is None  # waiting, not failing
        client.sql("insert into main.numbers values (100)")
        client.proc.stdin.write("close\n")
        client.proc.stdin.flush()
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, out + err
    finally:
        client.close()
    # the client's insert was replaced by the rebuilt table, as a full-refresh build rebuilds its models;
    # but nothing it wrote was lost to a stranded log: the warehouse reads fine
    assert query(warehouse(root), "select sum(n) from main.numbers") == [(6,)]


def test_a_leftover_log_and_an_open_reader_do_not_block_a_build(tmp_path, capsys):
    root = _built(tmp_path, capsys)
    wh = warehouse(root)
    writer = Client(wh)
    writer.sql("create table main.crashed_note as select 42 as x")
    writer.die()
    reader = Client(wh, "ro")  # a read-only BI connection left open on the file and its log
    try:
        assert reader.sql("select x from main.crashed_note") == "[(42,)]"
        built = run(capsys, root, "build")
        assert built.code == 0, built
        assert reader.sql("select x from main.crashed_note") == "[(42,)]"  # the reader is not disturbed
    finally:
        reader.close()
    assert query(wh, "select x from main.crashed_note") == [(42,)]
    assert not (root / "warehouse.duckdb.wal").exists()


def _stranded_log(root: Path) -> None:
    """What duckrec before this fix let happen: a writer connected across a publish writes
    and dies, leaving a log that belongs to the replaced file beside the new one."""
    wh = warehouse(root)
    client = Client(wh)
    try:
        copy = wh.with_name("elsewhere.duckdb")
        copy.write_bytes(wh.read_bytes())
        con = duckdb.connect(str(copy))
        con.execute("create table main.newer as select 1 as x")
        con.close()
        os.replace(copy, wh)
        client.sql("create table main.lost as select 1 as x")
        client.die()
    finally:
        client.close()


def test_a_stranded_log_is_explained_then_set_aside_by_the_next_build(tmp_path, capsys):
    root = _built(tmp_path, capsys)
    _stranded_log(root)
    broken = _in_fresh_process(warehouse(root), "select 1")
    assert "checkpoint iteration does not match" in broken.stderr  # DuckDB itself cannot read it
    shown = run(capsys, root, "show", "-i", "select 1 as one")
    assert shown.code == 4 and "warehouse.duckdb.wal" in shown.err and "duckrec build" in shown.err, shown
    built = run(capsys, root, "build")
    assert built.code == 0, built
    assert "matches no file any more" in built.out and "Moved to warehouse.duckdb.wal.stranded-" in built.out
    aside = list(root.glob("warehouse.duckdb.wal.stranded-*"))
    assert len(aside) == 1 and aside[0].stat().st_size > 0  # kept, under a name that says why
    assert run(capsys, root, "show", "-i", "select count(*) as n from main.newer").code == 0


def test_a_read_write_client_connecting_during_a_build_is_refused_readers_are_not(tmp_path, capsys):
    root = _built(tmp_path, capsys)
    wh = warehouse(root)
    proc = _start_slow_build(root, tmp_path / "marker", 30)
    try:
        rw = subprocess.run([sys.executable, "-c", f"import duckdb; duckdb.connect({str(wh)!r})"],
                            capture_output=True, text=True, timeout=60)
        assert rw.returncode != 0 and "Could not set lock" in rw.stderr
        ro = _in_fresh_process(wh, "select sum(n) from main.numbers")
        assert ro.returncode == 0 and "6" in ro.stdout, ro.stderr
    finally:
        proc.kill()
        proc.communicate()


@pytest.mark.parametrize("sql", [
    "copy (select 1) to '{wh}'",
    "select * from (select 1) q; copy (select 1) to '{wh}'; select * from (select 1)",
    "select 1) q; copy (select 1) to '{wh}'; select * from (select 1",
    "attach '{wh}' as w2 (read_only false)",
    "export database '{dir}/exported'",
    "select * from read_csv('{dir}/seeds/numbers_seed.csv')",
    "set enable_external_access = true",
    "delete from main.numbers",
])
def test_show_cannot_write_files_attach_or_run_more_than_one_statement(tmp_path, capsys, sql):
    root = _built(tmp_path, capsys)
    wh = warehouse(root)
    before = wh.read_bytes()
    for limit in ("20", "0"):  # --limit 0 runs the text without the limit wrapper
        result = run(capsys, root, "show", "--inline", sql.format(wh=wh, dir=root), "--limit", limit)
        assert result.code == 2, result
        assert "error:" in result.err and TRACEBACK not in result.text
        assert any(w in result.err for w in ("read-only", "disabled by configuration", "one query", "syntax error"))
    assert wh.read_bytes() == before
    assert not (root / "exported").exists()
    assert query(wh, "select sum(n) from main.numbers") == [(6,)]


def test_a_server_reconnecting_in_process_sees_new_builds_through_open_reader(tmp_path, capsys):
    from duckrec.warehouse.readers import open_reader

    root = _built(tmp_path, capsys)
    wh = warehouse(root)
    pooled = duckdb.connect(str(wh), read_only=True)  # what a pooled server keeps open
    try:
        _set_numbers(root, [10, 20])
        done = subprocess.run([sys.executable, "-m", "duckrec.cli", "build", "--project-dir", str(root)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        again = duckdb.connect(str(wh), read_only=True)  # DuckDB hands back the cached old file
        assert again.execute("select sum(n) from main.numbers").fetchall() == [(6,)]
        again.close()
        fresh = open_reader(wh)
        assert fresh.execute("select sum(n) from main.numbers").fetchall() == [(30,)]
        with pytest.raises(duckdb.Error, match="disabled by configuration"):
            fresh.execute(f"copy (select 1) to '{tmp_path}/x.csv'")
        fresh.close()
    finally:
        pooled.close()


def test_a_symlinked_warehouse_stays_a_link_and_shares_the_real_files_lock(tmp_path, capsys, monkeypatch):
    root = project(tmp_path / "p", {}, base=BASE)
    real_dir = tmp_path / "data"
    real_dir.mkdir()
    (root / "warehouse.duckdb").symlink_to(real_dir / "wh.duckdb")
    assert run(capsys, root, "build").code == 0
    link = root / "warehouse.duckdb"
    assert link.is_symlink() and (real_dir / "wh.duckdb").is_file()
    assert query(real_dir / "wh.duckdb", "select sum(n) from main.numbers") == [(6,)]
    proc = _start_slow_build(root, tmp_path / "marker", 30)  # through the link
    try:
        monkeypatch.setenv("DUCKREC_WAREHOUSE", str(real_dir / "wh.duckdb"))
        second = run(capsys, root, "build")  # through the real path
        assert second.code == 3 and "another duckrec build is running" in second.err, second
    finally:
        proc.kill()
        proc.communicate()
    assert link.is_symlink()


def test_a_publish_killed_between_retiring_the_log_and_the_rename_loses_nothing(tmp_path, capsys):
    root = _built(tmp_path, capsys)
    wh = warehouse(root)
    writer = Client(wh)
    writer.sql("create table main.crashed_note as select 7 as x")
    writer.die()
    log = root / "warehouse.duckdb.wal"
    saved = log.read_bytes()
    # killed after retiring the log, before the rename: the published file is the old one
    os.replace(log, root / "warehouse.duckdb.wal.folded")
    built = run(capsys, root, "build")
    assert built.code == 0, built
    assert query(wh, "select x from main.crashed_note") == [(7,)]
    # killed after the rename, before removing the retired log: it is already in the file
    (root / "warehouse.duckdb.wal.folded").write_bytes(saved)
    again = run(capsys, root, "build")
    assert again.code == 0, again
    assert query(wh, "select x from main.crashed_note") == [(7,)]
    # a log that does not replay is never deleted on the strength of its error text: it is set
    # aside like any other, and the warning says its contents are already in the warehouse
    assert "already in the published warehouse" in again.out, again
    assert [p.name.split("-")[0] for p in root.glob("warehouse.duckdb.wal*")] == ["warehouse.duckdb.wal.stranded"]
    assert (next(root.glob("warehouse.duckdb.wal.stranded-*"))).read_bytes() == saved
