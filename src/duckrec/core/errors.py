"""Errors a user can cause, each with where it happened and what was expected."""
from __future__ import annotations

from collections.abc import Iterable


class DuckrecError(Exception):
    """A problem in the project or its data that the user can fix.

    The CLI prints the message alone (no traceback) and exits with `exit_code`.
    """

    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        self.path = path
        self.line = line
        where = ""
        if path:
            where = f"{path}:{line}: " if line else f"{path}: "
        super().__init__(where + message)


class ProjectError(DuckrecError):
    """project.yml, YAML properties, Jinja or the DAG is wrong: nothing was built."""


class NodeError(DuckrecError):
    """One node failed while building: the rest of the DAG carries on."""

    exit_code = 1


class LockedError(DuckrecError):
    """Another build holds the warehouse."""

    exit_code = 3


class WriterConnectedError(LockedError):
    """A read-write DuckDB client (a BI tool) holds the published warehouse file."""


class WarehouseError(DuckrecError):
    """The warehouse file or its folder cannot be used: disk full, read-only or missing
    permissions, a directory or a damaged file at the path. Nothing was published."""

    exit_code = 4


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, sorted(set(choices)), n=3, cutoff=0.5)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"
