"""The warehouse file: one build at a time, built aside, published atomically.

A build never writes the published file. It copies it to `<warehouse>.building`, works
there, checkpoints, and renames the copy over the published file. So:
- a BI tool holding a read-only connection never blocks a build (it keeps reading the
  file it opened; new connections see the new one);
- nobody sees a half-built state, and a build killed at any moment (SIGKILL included)
  leaves the last published warehouse as it was; the next build starts a fresh copy.
The build lock is an flock on `<warehouse>.lock`: the kernel drops it when the process
dies, so a killed build never leaves a stale lock behind.

Read-write clients (BI tools open read-write by default). DuckDB locks the database file
with POSIX record locks: a shared lock per read-only connection, an exclusive one per
read-write connection, held for the connection's life, and it writes its write-ahead log
beside the file *by path*. A writer that stays connected across a publish would keep
writing the replaced file and drop its log beside the new one, which then matches no file
(every reader fails). So, from the copy until after the rename, a build holds a shared
lock of its own on the published file (an open-file-description lock, which DuckDB's
locks conflict with): read-only clients share it, a read-write client connected at the
start makes the build refuse (WriterConnectedError, or wait with --wait), and one
connecting during the build is refused by DuckDB with a lock message. What a crashed
writer committed sits in the log beside the file: the build copies file and log and lets
DuckDB replay the log into the copy (no write lock on the published file needed, so an
open reader does not block it), and the log is retired only once the copy holding its
contents is published. A log that belongs to no file any more (left by an older
duckrec) is set aside under a name that says so, with a warning, never deleted.

Symlinks are resolved first: the lock, the private copy and the rename are those of the
real file, so a link and its target share one lock and the link stays a link.
"""
from __future__ import annotations

import errno
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from duckrec.core.errors import DuckrecError, LockedError, WarehouseError
from duckrec.warehouse.failures import CORRUPT, environmental_cause
from duckrec.warehouse.locks import BuildLock, ReaderHold, Waiter, building_path, real_path, wal_path
from duckrec.core.sql import quoted_relation, sql_string


class Build:
    """A build's private copy of the warehouse, from the lock to the publish.

    `with Build(path) as b:` takes the lock, checks the published file, copies it (with what
    a crashed read-write client left in its log) and opens the copy as `b.con`; `b.publish()`
    renames it over the published file. Leaving the block without publishing (an error, an
    interrupt, a failed node under the all-or-nothing rule) removes the private copy. A
    failure of the disk or the folder becomes one WarehouseError naming the user's file.
    """

    def __init__(self, warehouse: Path, wait: bool = False, warn: Callable[[str], None] = print,
                 on_wait: Callable[..., None] | None = None):
        self.given = Path(warehouse)
        self.waiter = Waiter(on_wait)  # with --wait: whom the build waits for, and how long it waited
        self.path = real_path(self.given)
        self.work = building_path(self.path)
        self.wait = wait
        self.warn = warn
        self.con = None
        self.published = False
        self.fresh = False  # True when no warehouse was published yet: the build starts from an empty file
        self.stage = "preparing the build"
        self._lock: BuildLock | None = None
        self._hold: ReaderHold | None = None
        self._folded_wal = False

    # -------------------------------------------------------------- enter / exit
    def __enter__(self) -> "Build":
        try:
            self._check_path()
            self.stage = "taking the build lock"
            self._lock = BuildLock(self.path, self.wait, self.waiter).__enter__()
            if self.path.exists():
                self.stage = "checking for read-write connections"
                self._hold = ReaderHold(self.path, self.wait, self.waiter)
            self._copy()
        except BaseException as e:
            self._close_all()
            self._raise_environmental(e)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._close_all()
        if exc is not None and not isinstance(exc, DuckrecError):
            self._raise_environmental(exc)

    def _close_all(self) -> None:
        if self.con is not None:
            try:
                self.con.close()
            except Exception:  # noqa: BLE001 - closing a copy that is about to be deleted
                pass
            self.con = None
        if not self.published:
            discard(self.work)
        if self._hold is not None:
            self._hold.release()
            self._hold = None
        if self._lock is not None:
            self._lock.__exit__(None, None, None)
            self._lock = None

    def _raise_environmental(self, e: BaseException) -> None:
        if CORRUPT in str(e) and not isinstance(e, DuckrecError):
            raise self._damaged(self._ours(e)) from None
        cause = environmental_cause(e)
        if cause is None:
            return
        folder = self.path.parent
        if cause in ("No space left on device", "Disk quota exceeded", "File too large") or \
                getattr(e, "errno", None) in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            size = self.path.stat().st_size if self.path.is_file() else 0
            what = (f"a build needs room in {folder} for a private copy of the warehouse "
                    f"(now {size / 1e6:.1f} MB) plus what the build adds. Free space there, or point the "
                    "target's warehouse (project.yml targets.<name>.warehouse, or DUCKREC_WAREHOUSE) at a "
                    "roomier folder, and build again")
        else:
            what = (f"a build writes {self.path.name}.lock and {self.path.name}.building in {folder}. Make "
                    "the folder writable for this user, or point the target's warehouse (project.yml "
                    "targets.<name>.warehouse, or DUCKREC_WAREHOUSE) at a writable folder, and build again")
        raise WarehouseError(f"{cause} while {self.stage}: {what}. The private copy was removed; the published "
                             "warehouse is untouched.", path=str(self.given)) from None

    # -------------------------------------------------------------- the copy
    def _check_path(self) -> None:
        if self.path.is_dir():
            raise WarehouseError("this warehouse path is a directory, not a DuckDB file: point the target's "
                                 "warehouse (project.yml targets.<name>.warehouse, or DUCKREC_WAREHOUSE) at a "
                                 f"file, e.g. {self.given / 'warehouse.duckdb'}", path=str(self.given))

    def _copy(self) -> None:
        import duckdb

        discard(self.work)
        wal = wal_path(self.path)
        retired = wal.with_name(wal.name + ".folded")
        from_retired = False
        if retired.exists():
            if not wal.exists():
                # a publish was interrupted between retiring the log and the rename: the log
                # may still be the published file's own; the fold below tells
                os.replace(retired, wal)
                from_retired = True
            else:
                self._set_aside(retired, "a log retired by an interrupted publish, with a newer log beside it")
        self.fresh = not self.path.exists()
        if not self.fresh:
            self.stage = f"copying {self.path.name} to its private build copy"
            shutil.copyfile(self.path, self.work)
            self._verify_copy()
        if wal.exists() and self.path.exists():
            self.stage = "replaying the log a read-write client left beside the warehouse"
            shutil.copyfile(wal, wal_path(self.work))
            try:
                self.con = self._connect()
                self._folded_wal = True
            except duckdb.Error as e:
                if "WAL" not in str(e):
                    raise WarehouseError(f"the log beside the warehouse ({wal.name}) cannot be replayed: {self._ours(e)}. "
                                         f"Move {wal.name} away and build again.", path=str(self.given)) from None
                discard(self.work, only_wal=True)
                # never deleted: set aside, with why, whichever way it got here
                why = ("it was retired by a publish that was interrupted after the rename, so its contents are "
                       "already in the published warehouse" if from_retired else
                       "it was written by a read-write client against an older build of the warehouse and "
                       "matches no file any more")
                self._set_aside(wal, f"{why} ({self._ours(e)}); it made every reader fail")
        self.stage = "building"
        if self.con is None:
            self.con = self._connect()

    def _set_aside(self, log: Path, why: str) -> None:
        wal = wal_path(self.path)
        aside = wal.with_name(f"{wal.name}.stranded-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(log, aside)
        self.warn(f"warning: {log}: {why}. Moved to {aside.name}; what it holds is not in the warehouse.")

    def _connect(self):
        import duckdb

        # No fsync inside the private copy: a crash throws it away, and publish() fsyncs it.
        return duckdb.connect(str(self.work), config={"fsync_mode": "NONE"})

    def _ours(self, e: BaseException) -> str:
        return str(e).replace(str(self.work), str(self.path))

    def _verify_copy(self) -> None:
        """A damaged warehouse is found before the build runs: DuckDB opens it, and the file
        holds as many blocks as its header says are in use and reaches the last block its
        tables and catalogue use (a truncated one does not)."""
        import duckdb

        try:
            con = duckdb.connect(str(self.work), read_only=True)
            try:
                block_size, used = con.execute("select block_size, used_blocks from pragma_database_size() "
                                               "where database_name = current_database()").fetchone()
                tables = con.execute("select schema_name, table_name from duckdb_tables() "
                                     "where database_name = current_database() and not temporary").fetchall()
                last = con.execute("select coalesce(max(block_id), -1) from pragma_metadata_info()").fetchone()[0]
                for i in range(0, len(tables), 200):
                    parts = [f"select greatest(max(block_id), max(list_max(additional_block_ids))) as b "
                             f"from pragma_storage_info({sql_string(quoted_relation(s, t))})"
                             for s, t in tables[i:i + 200]]
                    found = con.execute(f"select max(b) from ({' union all '.join(parts)})").fetchone()[0]
                    last = max(last, -1 if found is None else int(found))
            finally:
                con.close()
        except duckdb.Error as e:
            raise self._damaged(self._ours(e)) from None
        expected = 3 * 4096 + int(block_size) * max(last + 1, int(used))
        size = self.work.stat().st_size
        if size < expected:
            raise self._damaged(f"it is {size} bytes long but the blocks it uses need {expected}: "
                                "the file is truncated")

    def _damaged(self, detail: str) -> WarehouseError:
        return WarehouseError(
            f"the warehouse file is damaged or not a DuckDB database ({detail}). Nothing was built. Restore it "
            f"from a backup, or move it aside (mv {self.given.name} {self.given.name}.broken) and build again to "
            "start a fresh warehouse (incremental tables and run history then start over).", path=str(self.given))

    def restart(self) -> None:
        """Throw the build's work away and start again from a fresh copy of the published
        file (a failed build then adds only its run history)."""
        self.stage = "starting again from the published warehouse"
        if self.con is not None:
            self.con.close()
            self.con = None
        self._folded_wal = False
        self._copy()

    # -------------------------------------------------------------- publish
    def publish(self) -> None:
        """Atomically replace the published warehouse with the finished build."""
        self.stage = "committing the build"
        if self.con is not None:
            self.con.execute("checkpoint")
            self.con.close()
            self.con = None
        self.stage = "publishing the build"
        with open(self.work, "rb+") as f:
            os.fsync(f.fileno())
        wal = wal_path(self.path)
        if self._folded_wal and wal.exists():
            # its contents are in the copy: retire it before the rename, since beside the new
            # file it would match nothing; kept until the rename is durable
            os.replace(wal, wal.with_name(wal.name + ".folded"))
        if self.fresh:
            self._publish_first()
        else:
            os.replace(self.work, self.path)
        self.published = True
        _fsync_dir(self.path.parent)
        retired = wal.with_name(wal.name + ".folded")
        if retired.exists():
            retired.unlink()

    def _publish_first(self) -> None:
        """The first build has no published file to lock, so a DuckDB client may create one
        while it runs: link the copy into place only if the path is still free (atomic), and
        never replace what a client wrote there."""
        try:
            os.link(self.work, self.path)
        except OSError as e:
            if e.errno == errno.EEXIST or self.path.exists():
                raise self._created_meanwhile() from None
            # a file system without hard links: the check and the rename are then two steps
            os.replace(self.work, self.path)
            return
        os.unlink(self.work)

    def _created_meanwhile(self) -> LockedError:
        return LockedError(
                f"{self.path} was created while this first build ran (a DuckDB client opening the path creates "
                "the file); it was left as it is and nothing was published. Close that client and build "
                "again: the build then starts from that file and keeps what the client wrote.",
                path=str(self.given))


def _fsync_dir(folder: Path) -> None:
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def discard(work: Path, only_wal: bool = False) -> None:
    for p in ([] if only_wal else [work]) + [wal_path(work)]:
        try:
            p.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            if p.exists():  # a folder gone read-only: the caller reports that
                raise
    tmp = work.with_name(work.name + ".tmp")  # DuckDB's spill folder
    if not only_wal and tmp.is_dir():
        shutil.rmtree(tmp, ignore_errors=True)
