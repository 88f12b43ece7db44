"""A reader that follows the published warehouse file across builds.

A build publishes by renaming a new file over `warehouse.duckdb`, so the path keeps its
name but names a new inode. DuckDB caches one database instance per path and process, so
reconnecting by path hands back the old build; `open_reader` (an in-memory instance with
the file attached read-only) does not. `LatestReader` keeps one such connection and, each
time it is asked for it, compares the file's identity (device, inode, size, mtime) with
the one it opened; when they differ it opens a fresh reader before answering. A query then
runs on one connection that attached one file: it cannot mix two builds.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from duckrec.core.errors import DuckrecError
from duckrec.warehouse.readers import open_reader

Identity = tuple[int, int, int, int]


def file_identity(path: Path) -> Identity:
    """What changes when a build publishes: the rename brings a new inode (and mtime)."""
    try:
        st = os.stat(path)  # follows a symlink to the file it names now
    except FileNotFoundError:
        raise DuckrecError("no warehouse here yet: run `duckrec build` first", path=str(path)) from None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def lock_down(con) -> None:
    """What `open_reader` does last unless allow_files: no file access, no setting changes."""
    con.execute("set enable_external_access = false")
    con.execute("set lock_configuration = true")


class LatestReader:
    """One DuckDB connection on the latest published build, swapped when a build publishes.

    `prepare(con)` runs on each new connection before it is locked down; `threads` and
    `memory_limit` (DuckDB's `'2GB'` form) cap each connection: every one is a DuckDB instance
    of its own, which by default may take every core and 80% of the memory. Not for use by
    two threads at once: a pool hands a connection to one thread at a time.
    """

    def __init__(self, warehouse: str | os.PathLike, *, prepare: Callable | None = None,
                 threads: int | None = None, memory_limit: str | None = None):
        self.path = Path(warehouse)
        self._prepare = prepare
        self._threads = threads
        self._memory_limit = memory_limit
        self._con = None
        self._identity: Identity | None = None
        self._lock = threading.Lock()
        self.opened = 0  # how many builds this reader has opened, for tests and the bench

    def connection(self):
        """The connection on the build published now, opening it if a build was published since."""
        with self._lock:
            identity = file_identity(self.path)
            if self._con is None or identity != self._identity:
                self._swap(identity)
            return self._con

    def is_current(self) -> bool:
        return self._con is not None and file_identity(self.path) == self._identity

    def _swap(self, identity: Identity) -> None:
        con = open_reader(self.path, allow_files=True)
        try:
            if self._threads:
                con.execute(f"set threads = {int(self._threads)}")
            if self._memory_limit:
                con.execute("set memory_limit = ?", [self._memory_limit])
            if self._prepare is not None:
                self._prepare(con)
            lock_down(con)
        except BaseException:
            con.close()
            raise
        # the identity is the one taken before the attach: if a build published in between, the
        # file attached is newer than it says and the next check reopens once more, harmlessly;
        # the other way round (a stat after the attach) could miss a publish for good
        old, self._con, self._identity = self._con, con, identity
        self.opened += 1
        if old is not None:
            old.close()

    def interrupt(self) -> None:
        con = self._con
        if con is not None:
            con.interrupt()

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
