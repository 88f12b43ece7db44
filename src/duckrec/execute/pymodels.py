"""Run Python models with dbt-duckdb's `def model(dbt, session)` signature."""
from __future__ import annotations

import importlib.util
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from duckrec.core.errors import NodeError, ProjectError
from duckrec.core.nodes import Node, Project
from duckrec.render.resolve import MISSING, runtime

RESULT_VIEW = "__duckrec_py_result"


class ModelConfig:
    """`dbt.config(...)` sets config; `dbt.config.get(key, default)` reads it."""

    def __init__(self, config: dict[str, Any]):
        self._config = config

    def __call__(self, **kwargs: Any) -> str:
        # materialization was read statically from the file; run-time calls only add settings
        self._config.update({k: v for k, v in kwargs.items() if k != "materialized"})
        return ""

    def get(self, key: str, default: Any = None) -> Any:
        return self._config.get(key, default)


class DbtContext:
    def __init__(self, con, project: Project, node: Node, incremental: bool, log: Callable[[str], None],
                 progress: Callable[..., None] | None = None, empty: bool = False, full_refresh: bool = False,
                 summary: Callable[[str], None] | None = None):
        # refs are read through a cursor of their own: a model that streams its result
        # (returns an iterator of frames) reads its refs while the build's connection is
        # busy writing the table, and DuckDB lets no query use its own connection
        self._con = con.cursor()
        self._project = project
        self._node = node
        self.config = ModelConfig(dict(node.config))
        self.this = node.relation
        self.is_incremental = incremental
        # duckrec extension: a table model that carries state over builds (a warm-started
        # model) starts afresh under --full-refresh
        self.full_refresh = full_refresh
        self.log = log
        # progress(task, done, total, figures=None, unit="it", final=False): a live bar on a
        # terminal, a line every few seconds in logs; pass it to long library calls
        self.progress = progress or (lambda *args, **kwargs: None)
        # summary(text): a line for the build's end summary and _duckrec.node_runs.summary (what a
        # SQL node's `summary` query gives), e.g. how much of its work a model could keep
        self.summary = summary or (lambda text: None)
        self._resolver = runtime(project, node)
        self._limit = " limit 0" if empty else ""  # --empty

    def ref(self, *args: str, **kwargs: Any):
        return self._con.sql(f"select * from {self._resolver.ref(*args, **kwargs).relation}{self._limit}")

    def source(self, source_name: str, table: str):
        return self._con.sql(f"select * from {self._resolver.source(source_name, table).relation}{self._limit}")

    def var(self, name: str, default: Any = MISSING) -> Any:
        return self._resolver.var(name, default)


def _import_paths(project: Project) -> None:
    # Python models may import the project's own modules (dbt-duckdb cannot): the project
    # root and the python_models folder are importable.
    for p in (str(project.root), str(project.path("python_models"))):
        if p not in sys.path:
            sys.path.insert(0, p)


def run_python_model(con, project: Project, node: Node, incremental: bool, log: Callable[[str], None],
                     progress: Callable[..., None] | None = None, empty: bool = False,
                     full_refresh: bool = False, summary: Callable[[str], None] | None = None) -> str:
    """Run the model and expose its result as a view; returns SQL that selects it."""
    _import_paths(project)
    path = project.root / node.path
    module_name = f"duckrec_model_{node.name}"
    try:
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        dbt = DbtContext(con, project, node, incremental, log, progress, empty, full_refresh, summary)
        _CURSORS[id(con)] = dbt._con
        result = module.model(dbt, con)
        # inside the try: a lazy frame's deferred error surfaces here, and is the model's too
        _expose(con, node, result, path)
    except (ProjectError, NodeError):
        raise
    except Exception as e:  # noqa: BLE001 - the user's code: report it with its own traceback
        raise _model_error(node, e, path) from None
    return f"select * from {RESULT_VIEW}"


def _model_error(node: Node, e: BaseException, path: Path) -> NodeError:
    return NodeError(f"Python model {node.name} raised {type(e).__name__}: {e}\n{_user_traceback(e, path)}",
                     path=node.path)


_CURSORS: dict[int, Any] = {}  # the running model's cursor, per build connection
_STREAM_ERRORS: dict[int, NodeError] = {}  # what a streamed result raised, per build connection


def _user_traceback(exc: BaseException, path: Path) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    start = next((i for i, f in enumerate(frames) if Path(f.filename) == path), 0)
    return "".join(traceback.format_list(frames[start:])).rstrip()


def _expose(con, node: Node, result: Any, path: Path) -> None:
    if _is_stream(result):
        con.register(RESULT_VIEW, _stream_reader(con, node, iter(result), path))
        return
    module = type(result).__module__.split(".")[0]
    if module == "polars":
        if hasattr(result, "collect"):
            result = result.collect()
        result = result.to_arrow()
        module = "pyarrow"
    if module == "duckdb":
        try:
            result.create_view(RESULT_VIEW, replace=True)
            if not con.execute("select count(*) from duckdb_views() where view_name = ?", [RESULT_VIEW]).fetchone()[0]:
                # a relation of the model's cursor (dbt.ref): its view is that cursor's; the
                # build's connection selects the same SQL (refs are qualified names)
                con.execute(f"create or replace temp view {RESULT_VIEW} as {result.sql_query()}")
        except Exception:  # noqa: BLE001 - a relation over a Python object cannot be a stored view
            con.register(RESULT_VIEW, result.to_arrow_table())
        return
    if module in ("pyarrow", "pandas"):
        con.register(RESULT_VIEW, result)
        return
    raise NodeError(f"Python model {node.name} returned {type(result).__name__}; expected a polars DataFrame, "
                    "a pyarrow Table or a DuckDB relation", path=node.path)


def _is_stream(result: Any) -> bool:
    """A generator or other iterator of frames (not a frame, table or relation)."""
    import collections.abc as abc

    return isinstance(result, abc.Iterator) and type(result).__module__.split(".")[0] not in (
        "polars", "pyarrow", "pandas", "duckdb")


def _stream_reader(con, node: Node, frames, path: Path):
    """An Arrow stream over a model's iterator of frames (polars DataFrames, Arrow tables or
    record batches), pulled while DuckDB writes the table: the result is never held whole.
    The first frame gives the schema (it may have no rows); every later one is cast to it,
    and a frame that cannot be is the model's error. An exception raised by the model's code
    while it streams is kept, so the build reports it with the model's own traceback."""
    import pyarrow as pa

    def table_of(frame):
        module = type(frame).__module__.split(".")[0]
        if module == "polars":
            return (frame.collect() if hasattr(frame, "collect") else frame).to_arrow()
        if isinstance(frame, pa.RecordBatch):
            return pa.Table.from_batches([frame])
        if isinstance(frame, pa.Table):
            return frame
        raise TypeError(f"a streamed result yields polars DataFrames or Arrow tables, found {type(frame).__name__}")

    try:
        first = table_of(next(frames))
    except StopIteration:
        raise NodeError(f"Python model {node.name} returned an iterator without a frame; yield at least one "
                        "(an empty frame with the table's columns)", path=node.path) from None
    schema = first.schema

    def batches():
        try:
            yield from first.to_batches()
            for frame in frames:
                table = table_of(frame)
                if table.schema != schema:
                    try:
                        table = table.select(schema.names).cast(schema)
                    except (KeyError, ValueError, pa.ArrowException) as e:
                        raise TypeError(f"a streamed frame's columns {table.schema.names} "
                                        f"({table.schema.types}) do not match the first frame's "
                                        f"{schema.names} ({schema.types}): {e}") from None
                yield from table.to_batches()
        except Exception as e:  # noqa: BLE001 - the user's code: reported with its traceback
            _STREAM_ERRORS[id(con)] = _model_error(node, e, path)
            raise

    return pa.RecordBatchReader.from_batches(schema, batches())


def stream_error(con) -> NodeError | None:
    """What the running model's streamed result raised, if DuckDB's error came from it."""
    return _STREAM_ERRORS.pop(id(con), None)


def release(con) -> None:
    _STREAM_ERRORS.pop(id(con), None)
    cursor = _CURSORS.pop(id(con), None)
    if cursor is not None:
        try:
            cursor.close()
        except Exception:  # noqa: BLE001 - already closed with its connection
            pass
    try:
        con.unregister(RESULT_VIEW)
    except Exception:  # noqa: BLE001 - a relation result is a view, not a registration
        pass
    con.execute(f"drop view if exists {RESULT_VIEW}")
