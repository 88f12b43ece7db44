"""Failure classification: is an error the disk's or the folder's doing, or the project's?"""
from __future__ import annotations

import errno

# errno values that mean "the disk or the folder", not "the project"
_ENV_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EISDIR,
               errno.ENOTDIR, errno.EIO, errno.EFBIG}
_ENV_TEXTS = ("No space left on device", "Disk quota exceeded", "Read-only file system", "File too large")


def environmental_cause(e: BaseException) -> str | None:
    """'No space left on device' and the like when `e` is the disk's or the folder's doing."""
    import duckdb

    if isinstance(e, OSError) and e.errno in _ENV_ERRNOS:
        return e.strerror or str(e)
    if isinstance(e, (OSError, duckdb.Error)):
        text = str(e)
        for t in _ENV_TEXTS:
            if t in text:
                return t
    return None


def disk_failure(e: BaseException) -> bool:
    """A full disk, a file system gone read-only or a damaged block under a node: the whole
    build stops."""
    if isinstance(e, OSError):
        return e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)
    return environmental_cause(e) is not None or CORRUPT in str(e)


CORRUPT = "Corrupt database file"
