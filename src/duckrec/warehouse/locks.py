"""Who holds the warehouse: the build lock, and DuckDB's own file locks of its clients.

The build lock is an flock on `<warehouse>.lock`: the kernel drops it when the process
dies, so a killed build never leaves a stale lock behind.

Read-write clients (BI tools open read-write by default). DuckDB locks the database file
with POSIX record locks: a shared lock per read-only connection, an exclusive one per
read-write connection, held for the connection's life. From the copy until after the
rename, a build holds a shared lock of its own on the published file (an open-file-
description lock, which DuckDB's locks conflict with): read-only clients share it, and a
read-write client connected at the start makes the build refuse (WriterConnectedError, or
wait with --wait). duckrec.warehouse.build says why.

Symlinks are resolved first (real_path): the lock, the private copy and the rename are
those of the real file, so a link and its target share one lock and the link stays a link.
"""
from __future__ import annotations

import errno
import fcntl
import os
import struct
import time
from collections.abc import Callable
from pathlib import Path

from duckrec.core.errors import LockedError, WriterConnectedError


def real_path(warehouse: Path) -> Path:
    """The file a build locks, copies and replaces: symlinks resolved."""
    return Path(os.path.realpath(warehouse))


def wal_path(db: Path) -> Path:
    return db.with_name(db.name + ".wal")


def building_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".building")


WAIT_REPORT_EVERY = 30.0  # seconds between "still waiting" lines: the --quiet heartbeat's period
_POLL = 0.2


class Waiter:
    """While a build waits (--wait) for the warehouse: says whom it waits for when the wait
    starts and every WAIT_REPORT_EVERY seconds, and keeps how long it waited, so that the
    build's reported time can leave the wait out. `notify(message, holder=..., waited_seconds=...)`."""

    def __init__(self, notify: Callable[..., None] | None = None):
        self.notify = notify
        self.waited = 0.0          # seconds, every wait of this build together
        self._since: float | None = None
        self._last_report = 0.0
        self._before = 0.0         # seconds of the waits already over

    def pause(self, what: str, holder: Callable[[], str]) -> None:
        """One poll interval of waiting for `what` (a phrase); `holder()` names who holds it."""
        now = time.monotonic()
        if self._since is None:
            self._since = self._last_report = now
            self._say(f"waiting for {what} ({holder()}) to release the warehouse; --wait checks every "
                      f"{_POLL:g}s", holder, 0.0)
        elif now - self._last_report >= WAIT_REPORT_EVERY:
            self._last_report = now
            self._say(f"still waiting for {what} ({holder()}): {now - self._since:.0f}s so far", holder,
                      now - self._since)
        time.sleep(_POLL)
        self.waited = self._before + time.monotonic() - self._since

    def done(self) -> None:
        """The wait is over: the next wait (a read-write client after the build lock) starts its own line."""
        if self._since is not None:
            self._say(f"the warehouse is free after {time.monotonic() - self._since:.1f}s of waiting; building",
                      lambda: "", time.monotonic() - self._since)
            self._before = self.waited = self._before + time.monotonic() - self._since
        self._since = None

    def _say(self, message: str, holder: Callable[[], str], waited: float) -> None:
        if self.notify is not None:
            self.notify(message, holder=holder() or None, waited_seconds=round(waited, 1))


class BuildLock:
    def __init__(self, warehouse: Path, wait: bool = False, waiter: Waiter | None = None):
        self.path = warehouse.with_name(warehouse.name + ".lock")
        self.wait = wait
        self.waiter = waiter or Waiter()
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
                self.waiter.pause("another duckrec build", lambda: _read(fd) or "holder unknown")
        self.waiter.done()
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


# ----------------------------------------------------------------- DuckDB's file locks

_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", None)
_OFD_GETLK = getattr(fcntl, "F_OFD_GETLK", None)


def _flock(kind: int) -> bytes:
    # struct flock on Linux: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid
    return struct.pack("hhqqi4x", kind, os.SEEK_SET, 0, 0, 0)


def writer_pid(fd: int) -> int | None:
    """The pid of a process holding an exclusive (read-write) DuckDB lock on the file, -1 when
    the holder is not a process lock, None when there is no writer."""
    cmd = _OFD_GETLK if _OFD_GETLK is not None else fcntl.F_GETLK
    kind, _, _, _, pid = struct.unpack("hhqqi4x", fcntl.fcntl(fd, cmd, _flock(fcntl.F_RDLCK)))
    return None if kind == fcntl.F_UNLCK else pid


def describe_process(pid: int | None) -> str:
    if pid is None or pid <= 0:
        return "process unknown"
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmd = ""
    return f"pid {pid}" + (f": {cmd[:120]}" if cmd else "")


class ReaderHold:
    """A shared lock on the published file, as a DuckDB read-only client takes: readers share
    it, no read-write client can connect while it is held, and it cannot be taken while one
    is connected. Open-file-description locks (Linux) belong to this descriptor alone, so
    the build's other opens and closes of the file cannot drop it."""

    def __init__(self, db: Path, wait: bool, waiter: Waiter | None = None):
        waiter = waiter or Waiter()
        self.fd = os.open(db, os.O_RDONLY)
        if _OFD_SETLK is None:  # not Linux: no hold, only the check for a connected writer
            pid = writer_pid(self.fd)
            if pid is not None:
                os.close(self.fd)
                raise _writer_connected(db, pid)
            return
        while True:
            try:
                fcntl.fcntl(self.fd, _OFD_SETLK, _flock(fcntl.F_RDLCK))
                waiter.done()
                return
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(self.fd)
                    raise
            if not wait:
                pid = writer_pid(self.fd)
                os.close(self.fd)
                raise _writer_connected(db, pid)
            waiter.pause("a read-write DuckDB connection", lambda: describe_process(writer_pid(self.fd)))

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the descriptor drops its lock
            self.fd = -1


def _writer_connected(db: Path, pid: int | None) -> WriterConnectedError:
    return WriterConnectedError(
        f"a read-write DuckDB connection is open on the warehouse ({describe_process(pid)}). While it is "
        "open DuckDB lets no other process read the file, so a build cannot take a consistent copy, and "
        "what the connection writes after a publish would be lost. Close it (BI tools: reconnect "
        "read-only, see the README's 'Connecting a BI tool') and build again, or pass --wait to build as "
        "soon as it closes. Nothing was built; the warehouse is untouched.", path=str(db))


# ----------------------------------------------------------------- environmental failures
