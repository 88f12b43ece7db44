"""`duckrec://`: an SQLAlchemy dialect whose pooled connections follow each published build.

`create_engine("duckrec:////abs/path/warehouse.duckdb")` (four slashes for an absolute path,
as with sqlite). Each DBAPI connection is an in-memory DuckDB with the warehouse attached
read-only (`LatestReader`); every cursor (SQLAlchemy makes one per statement) checks whether a
build was published since, and if so runs on a fresh reader of the new file. So a held connection,
a pool checkout and `pandas.read_sql` see a new build from their next query on, and one query
always reads one build. Consecutive queries inside one SQLAlchemy transaction may read two
builds when one was published between them (the warehouse is read-only: there is nothing of
the transaction's own to be inconsistent with).

SQL compilation and types come from duckdb-engine's dialect (kept up with DuckDB and
SQLAlchemy by its maintainers); reflection does not: duckdb-engine reflects through
PostgreSQL's pg_catalog queries, which DuckDB answers only in part (with SQLAlchemy 2.1 and
duckdb-engine 0.17, `get_columns` fails on `pg_catalog.pg_collation`). Here it reads DuckDB's
own `duckdb_tables()`, `duckdb_views()`, `duckdb_columns()` and `duckdb_constraints()`,
which do not change with the SQLAlchemy release.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from duckdb_engine import CursorWrapper, Dialect as DuckDBEngineDialect
from sqlalchemy import exc, pool
from sqlalchemy import types as sqltypes
from sqlalchemy.engine.default import DefaultDialect

from duckrec.bi.published import LatestReader


class PublishedConnection:
    """A DBAPI connection (as duckdb-engine's dialect expects one) on the latest build."""

    autocommit = None  # DuckDB has no autocommit switch; SQLAlchemy begins and ends transactions
    closed = False

    def __init__(self, reader: LatestReader):
        self._reader = reader
        self._con = None
        self._in_transaction = False
        self.notices: list[str] = []

    def _current(self):
        con = self._reader.connection()
        if con is not self._con:
            # a new build: the old connection (and its transaction) is gone; carry the
            # transaction over so SQLAlchemy's commit/rollback find one to end
            self._con = con
            if self._in_transaction:
                con.begin()
        return con

    def cursor(self) -> CursorWrapper:
        return CursorWrapper(self._current(), self)

    def begin(self) -> None:
        # no check for a new build here: SQLAlchemy makes the statement's cursor before it begins
        # the transaction, and a swap now would close the connection under that cursor; the
        # cursor's own check has already chosen the build
        (self._con or self._current()).begin()
        self._in_transaction = True

    def commit(self) -> None:
        self._end("commit")

    def rollback(self) -> None:
        self._end("rollback")

    def _end(self, how: str) -> None:
        if self._in_transaction and self._con is not None:
            self._in_transaction = False
            getattr(self._con, how)()

    def close(self) -> None:
        self._reader.close()
        self._con = None
        self.closed = True

    def __getattr__(self, name: str) -> Any:  # what else duckdb-engine asks of a connection
        return getattr(self._con or self._current(), name)  # no swap: only a new cursor chooses the build


def warehouse_from_url(database: str | None) -> Path:
    """The warehouse file a `duckrec://` URL names. `duckrec:////abs/path` is absolute;
    `duckrec:///abs/path` (three slashes, as often written) is taken as absolute too when
    no such relative path exists, since a BI server's working folder means nothing."""
    if not database:
        raise exc.ArgumentError("a duckrec:// URL names the warehouse file: duckrec:////abs/path/warehouse.duckdb"
                                " (found no path)")
    path = Path(database)
    if not path.is_absolute() and not path.exists() and Path("/" + database).exists():
        path = Path("/" + database)
    return path


_INTEGERS = {"TINYINT": sqltypes.SmallInteger, "SMALLINT": sqltypes.SmallInteger, "INTEGER": sqltypes.Integer,
             "BIGINT": sqltypes.BigInteger, "HUGEINT": sqltypes.Numeric, "UTINYINT": sqltypes.SmallInteger,
             "USMALLINT": sqltypes.Integer, "UINTEGER": sqltypes.BigInteger, "UBIGINT": sqltypes.Numeric,
             "UHUGEINT": sqltypes.Numeric}
_SIMPLE = {"BOOLEAN": sqltypes.Boolean, "FLOAT": sqltypes.REAL, "DOUBLE": sqltypes.Double,
           "VARCHAR": sqltypes.String, "DATE": sqltypes.Date, "TIME": sqltypes.Time, "INTERVAL": sqltypes.Interval,
           "TIMESTAMP": sqltypes.DateTime, "TIMESTAMP_S": sqltypes.DateTime, "TIMESTAMP_MS": sqltypes.DateTime,
           "TIMESTAMP_NS": sqltypes.DateTime, "BLOB": sqltypes.LargeBinary, "UUID": sqltypes.Uuid,
           "JSON": sqltypes.JSON, "BIT": sqltypes.String}


def sqlalchemy_type(duckdb_type: str) -> sqltypes.TypeEngine:
    """The SQLAlchemy type of a DuckDB type as duckdb_columns() spells it (`DECIMAL(18,3)`,
    `VARCHAR[]`, `FLOAT[16]`, `STRUCT(a INTEGER)`); NullType for what has none."""
    text = duckdb_type.strip()
    array = re.fullmatch(r"(.+)\[(\d*)\]", text)
    if array:
        return sqltypes.ARRAY(sqlalchemy_type(array.group(1)))
    decimal = re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", text)
    if decimal:
        return sqltypes.Numeric(int(decimal.group(1)), int(decimal.group(2)))
    if text in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
        return sqltypes.DateTime(timezone=True)
    if text in ("TIME WITH TIME ZONE", "TIMETZ"):
        return sqltypes.Time(timezone=True)
    if text in _INTEGERS:
        return _INTEGERS[text]()
    if text in _SIMPLE:
        return _SIMPLE[text]()
    return sqltypes.NullType()  # STRUCT, MAP, UNION, ENUM...: shown, typed as unknown


class DuckrecDialect(DuckDBEngineDialect):
    name = "duckrec"
    driver = "duckrec"
    supports_statement_cache = False

    # --- connecting
    def create_connect_args(self, url) -> tuple[tuple, dict]:
        options = dict(url.query)
        threads = options.pop("threads", None)
        if options:
            raise exc.ArgumentError(f"duckrec:// URL options: only threads=N is known, found {sorted(options)}")
        return (), {"warehouse": str(warehouse_from_url(url.database)), "threads": int(threads) if threads else None}

    def connect(self, *cargs: Any, warehouse: str, threads: int | None = None, **cparams: Any) -> PublishedConnection:
        return PublishedConnection(LatestReader(warehouse, threads=threads))

    @classmethod
    def get_pool_class(cls, url) -> type[pool.Pool]:
        return pool.QueuePool

    # --- reflection, from DuckDB's own catalog functions
    def _rows(self, connection, sql: str, *params: Any) -> list[tuple]:
        return list(connection.exec_driver_sql(sql, params))

    def _schema(self, connection, schema: str | None) -> str:
        return schema or self.default_schema_name or "main"

    def get_schema_names(self, connection, **kw: Any) -> list[str]:
        return [r[0] for r in self._rows(connection, "select schema_name from duckdb_schemas() where database_name ="
                                         " current_database() and schema_name not in ('information_schema', "
                                         "'pg_catalog') order by 1")]

    def get_table_names(self, connection, schema: str | None = None, **kw: Any) -> list[str]:
        return [r[0] for r in self._rows(
            connection, "select table_name from duckdb_tables() where database_name = current_database() and "
            "schema_name = $1 and not temporary order by 1", self._schema(connection, schema))]

    def get_view_names(self, connection, schema: str | None = None, **kw: Any) -> list[str]:
        return [r[0] for r in self._rows(
            connection, "select view_name from duckdb_views() where database_name = current_database() and "
            "schema_name = $1 and not internal and not temporary order by 1", self._schema(connection, schema))]

    def get_temp_table_names(self, connection, **kw: Any) -> list[str]:
        return []

    def get_temp_view_names(self, connection, **kw: Any) -> list[str]:
        return []

    def get_materialized_view_names(self, connection, schema: str | None = None, **kw: Any) -> list[str]:
        return []

    def get_sequence_names(self, connection, schema: str | None = None, **kw: Any) -> list[str]:
        return [r[0] for r in self._rows(
            connection, "select sequence_name from duckdb_sequences() where database_name = current_database() "
            "and schema_name = $1 order by 1", self._schema(connection, schema))]

    def has_table(self, connection, table_name: str, schema: str | None = None, **kw: Any) -> bool:
        return self._relation_comment(connection, table_name, schema) is not None

    def _relation_comment(self, connection, table_name: str, schema: str | None) -> tuple | None:
        rows = self._rows(
            connection, "select comment from duckdb_tables() where database_name = current_database() and "
            "schema_name = $1 and table_name = $2 union all select comment from duckdb_views() where "
            "database_name = current_database() and schema_name = $1 and view_name = $2",
            self._schema(connection, schema), table_name)
        return rows[0] if rows else None

    def get_table_comment(self, connection, table_name: str, schema: str | None = None, **kw: Any) -> dict:
        found = self._relation_comment(connection, table_name, schema)
        if found is None:
            raise exc.NoSuchTableError(f"{self._schema(connection, schema)}.{table_name}")
        return {"text": found[0] or None}

    def get_columns(self, connection, table_name: str, schema: str | None = None, **kw: Any) -> list[dict]:
        rows = self._rows(
            connection, "select column_name, data_type, is_nullable, column_default, comment from duckdb_columns()"
            " where database_name = current_database() and schema_name = $1 and table_name = $2 "
            "order by column_index", self._schema(connection, schema), table_name)
        if not rows:
            raise exc.NoSuchTableError(f"{self._schema(connection, schema)}.{table_name}")
        return [{"name": name, "type": sqlalchemy_type(kind), "nullable": bool(nullable), "default": default,
                 "comment": comment or None, "autoincrement": False} for name, kind, nullable, default, comment in rows]

    def _constraints(self, connection, table_name: str, schema: str | None, kind: str) -> list[tuple]:
        return self._rows(
            connection, "select constraint_name, constraint_column_names, expression, referenced_table, "
            "referenced_column_names from duckdb_constraints() where database_name = current_database() and "
            "schema_name = $1 and table_name = $2 and constraint_type = $3 order by constraint_index",
            self._schema(connection, schema), table_name, kind)

    def get_pk_constraint(self, connection, table_name: str, schema: str | None = None, **kw: Any) -> dict:
        rows = self._constraints(connection, table_name, schema, "PRIMARY KEY")
        return {"constrained_columns": list(rows[0][1]) if rows else [], "name": rows[0][0] if rows else None}

    def get_foreign_keys(self, connection, table_name: str, schema: str | None = None, **kw: Any) -> list[dict]:
        return [{"name": name, "constrained_columns": list(cols), "referred_schema": self._schema(connection, schema),
                 "referred_table": ref_table, "referred_columns": list(ref_cols or []), "options": {}}
                for name, cols, _, ref_table, ref_cols in
                self._constraints(connection, table_name, schema, "FOREIGN KEY")]

    def get_unique_constraints(self, connection, table_name: str, schema: str | None = None, **kw: Any) -> list:
        return [{"name": name, "column_names": list(cols)}
                for name, cols, *_ in self._constraints(connection, table_name, schema, "UNIQUE")]

    def get_check_constraints(self, connection, table_name: str, schema: str | None = None, **kw: Any) -> list:
        return [{"name": name, "sqltext": expression}
                for name, _, expression, *_ in self._constraints(connection, table_name, schema, "CHECK")]

    def get_indexes(self, connection, table_name: str, schema: str | None = None, **kw: Any) -> list:
        return []  # the warehouse's tables carry no indexes a BI tool could use

    def get_table_options(self, connection, table_name: str, schema: str | None = None, **kw: Any) -> dict:
        return {}

    # the multi-table forms loop over the ones above (PostgreSQL's own go to pg_catalog)
    get_multi_columns = DefaultDialect.get_multi_columns
    get_multi_pk_constraint = DefaultDialect.get_multi_pk_constraint
    get_multi_foreign_keys = DefaultDialect.get_multi_foreign_keys
    get_multi_indexes = DefaultDialect.get_multi_indexes
    get_multi_unique_constraints = DefaultDialect.get_multi_unique_constraints
    get_multi_check_constraints = DefaultDialect.get_multi_check_constraints
    get_multi_table_comment = DefaultDialect.get_multi_table_comment
    get_multi_table_options = DefaultDialect.get_multi_table_options


def register() -> None:
    """Register `duckrec://` in this process: what the `sqlalchemy.dialects` entry point does
    once duckrec is installed; for a checkout run from its source folder."""
    from sqlalchemy.dialects import registry

    registry.register("duckrec", "duckrec.bi.dialect", "DuckrecDialect")

