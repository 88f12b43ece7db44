"""The warehouse file: one build at a time, built aside, published atomically.

A build never writes the published file. It copies it to `<warehouse>.building`, works
there, checkpoints, and renames the copy over the published file. So:
- a BI tool holding a read-only connection never blocks a build (it keeps reading the
  file it opened; new connections see the new one);
- nobody sees a half-built state, and a build killed at any moment (SIGKILL included)
  leaves the last published warehouse as it was; the next build starts a fresh copy.
The build lock is an flock on `<warehouse>.lock`: the kernel drops it when the process
dies, so a killed build never leaves a stale lock behind.
"""
from __future__ import annotations

import errno
import fcntl
import os
import shutil
import time
from pathlib import Path

from .errors import DuckrecError, LockedError


class BuildLock:
    def __init__(self, warehouse: Path, wait: bool = False):
        self.path = warehouse.with_name(warehouse.name + ".lock")
        self.wait = wait
        self._fd: int | None = None

    def __enter__(self) -> "BuildLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if not self.wait:
                    holder = _read(fd)
                    os.close(fd)
                    raise LockedError(
                        f"another duckrec build is running on this warehouse ({holder or 'holder unknown'}); "
                        "wait for it to finish or pass --wait", path=str(self.path)) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 200).decode(errors="replace").strip()
    except OSError:
        return ""


def building_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".building")


def start_build(warehouse: Path) -> Path:
    """Make the private copy a build works in (call while holding the BuildLock)."""
    work = building_path(warehouse)
    for stale in (work, work.with_name(work.name + ".wal")):
        if stale.exists():
            stale.unlink()
    wal = warehouse.with_name(warehouse.name + ".wal")
    if wal.exists() and warehouse.exists():
        # Someone wrote the published file directly and left a WAL: fold it in first.
        _checkpoint(warehouse)
    if warehouse.exists():
        shutil.copyfile(warehouse, work)
    return work


def _checkpoint(path: Path) -> None:
    import duckdb

    try:
        con = duckdb.connect(str(path))
    except duckdb.Error as e:
        raise DuckrecError(f"cannot fold the write-ahead log of the published warehouse into it: {e}",
                           path=str(path)) from None
    con.execute("CHECKPOINT")
    con.close()


def publish(work: Path, warehouse: Path) -> None:
    """Atomically replace the published warehouse with the finished build."""
    with open(work, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(work, warehouse)
    dir_fd = os.open(warehouse.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def discard(work: Path) -> None:
    for p in (work, work.with_name(work.name + ".wal")):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


CONNECTION_SETTINGS = ("memory_limit", "threads", "temp_directory", "max_temp_directory_size")


def connection_config(target_name: str, target: dict) -> dict:
    """DuckDB settings a target in project.yml sets for its builds: ``memory_limit`` (beyond
    it DuckDB spills to ``temp_directory``, by default ``<warehouse>.tmp``), ``threads``,
    ``max_temp_directory_size``."""
    config = {}
    for key in CONNECTION_SETTINGS:
        value = target.get(key)
        if value is None:
            continue
        if key == "threads" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise DuckrecError(f"targets.{target_name}.threads: expected a whole number >= 1, found {value!r}",
                               path="project.yml")
        config[key] = value if key == "threads" else str(value)
    return config


def connect_read_only(warehouse: Path):
    import duckdb

    if not warehouse.exists():
        raise DuckrecError("no warehouse here yet: run `duckrec build` first", path=str(warehouse))
    try:
        return duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error as e:
        raise DuckrecError(f"cannot open the warehouse read-only: {e}", path=str(warehouse)) from None
