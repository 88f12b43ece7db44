"""One client's session of `duckrec serve`: the simple and extended query protocols on a
`LatestReader`, so each query runs on the build published when it starts, and only reads."""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from duckrec.serve import wire
from duckrec.serve.catalog import SERVER_VERSION, needs_catalog, prepare_catalog, rewrite
from duckrec.serve.results import Rows, pg_error
from duckrec.serve.wire import PgError, Reader

# session parameters a client may SET and SHOW; SET changes only what SHOW answers
DEFAULT_PARAMETERS = {
    "server_version": SERVER_VERSION, "server_encoding": "UTF8", "client_encoding": "UTF8",
    "DateStyle": "ISO, MDY", "TimeZone": "UTC", "integer_datetimes": "on", "standard_conforming_strings": "on",
    "IntervalStyle": "postgres", "is_superuser": "off", "application_name": "",
    "default_transaction_read_only": "on", "transaction_read_only": "on", "transaction_isolation": "read committed",
    "default_transaction_isolation": "read committed", "search_path": '"$user", public',
    "max_identifier_length": "63", "lc_collate": "C", "lc_ctype": "C", "extra_float_digits": "3",
}
REPORTED = ("server_version", "server_encoding", "client_encoding", "DateStyle", "TimeZone", "integer_datetimes",
            "standard_conforming_strings", "IntervalStyle", "is_superuser", "application_name",
            "default_transaction_read_only")
_KEYWORD = re.compile(r"^\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*([A-Za-z]+)", re.S)
_SET = re.compile(r"^\s*set\s+(?:session\s+|local\s+)?(?:characteristics\s+as\s+)?([\w.\"]+(?:\s+\w+)*?)\s*"
                  r"(?:=|\bto\b)\s*(.*?)\s*;?\s*$", re.I | re.S)
_SHOW = re.compile(r"^\s*show\s+(.+?)\s*;?\s*$", re.I | re.S)
_ALLOWED = None  # filled lazily: the DuckDB statement types that only read


@dataclass
class Prepared:
    sql: str
    param_oids: list[int]


@dataclass
class Portal:
    prepared: Prepared
    params: list[Any]
    formats: list[int]
    columns: list[tuple[str, int]] | None = None
    rows: Rows | None = None
    tag: str = ""


@dataclass
class Outcome:
    tag: str  # for a query, "SELECT" and the count is added once the rows are sent
    columns: list[tuple[str, int]] | None = None
    rows: Rows = field(default_factory=Rows)


def _read_only_types():
    global _ALLOWED
    if _ALLOWED is None:
        import duckdb

        _ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
    return _ALLOWED


def _tag(result) -> str:
    """The CommandComplete tag: a query's says how many rows were sent."""
    return f"SELECT {result.rows.count}" if result.tag == "SELECT" else result.tag




class Session:
    def __init__(self, reader, workers: threading.Semaphore, params: dict[str, str]):
        self.reader = reader
        self.workers = workers
        self.params = {**DEFAULT_PARAMETERS, **{k: v for k, v in params.items() if k in DEFAULT_PARAMETERS}}
        self.status = b"I"  # I idle, T in a transaction, E in a failed transaction
        self.prepared: dict[str, Prepared] = {}
        self.portals: dict[str, Portal] = {}
        self._catalog_of = None  # the connection (so the build) whose pg_catalog is built
        self._open: Rows | None = None  # the rows of the last query, until read or dropped

    def _connection(self, sql: str):
        """The connection on the latest build, with its pg_catalog when `sql` reads one. The
        catalog is built on first use per build (a few hundred ms), not at each publish for
        every session: most BI queries never touch it."""
        con = self.reader.connection()
        if self._catalog_of is not con and needs_catalog(sql):
            prepare_catalog(con)
            self._catalog_of = con
        return con

    # ------------------------------------------------------------- statements
    def outcome(self, sql: str, params: list[Any] | None = None, run: bool = True) -> Outcome:
        """What one statement answers. Transaction control, SET and SHOW are the session's;
        everything else must be one read-only DuckDB query."""
        keyword = (_KEYWORD.match(sql).group(1).lower() if _KEYWORD.match(sql) else "")
        if keyword == "rollback" and re.match(r"^\s*rollback\s+(work\s+|transaction\s+)?to\b", sql, re.I):
            self.status = b"T" if self.status != b"I" else b"I"  # back to the savepoint: the block goes on
            return Outcome("ROLLBACK")
        if self.status == b"E" and keyword not in ("commit", "rollback", "end", "abort"):
            raise PgError("current transaction is aborted, commands ignored until end of transaction block", "25P02")
        if keyword in ("begin", "start"):
            self.status = b"T"
            return Outcome("BEGIN")
        if keyword in ("commit", "end", "rollback", "abort"):
            self.status = b"I"
            return Outcome("ROLLBACK" if keyword in ("rollback", "abort") else "COMMIT")
        if keyword in ("savepoint", "release"):
            return Outcome(keyword.upper())  # nothing is written, so there is nothing to keep apart
        if keyword in ("set", "reset", "discard", "deallocate", "close", "unlisten"):
            return self._session_command(keyword, sql)
        if keyword == "show":
            return self._show(sql)
        if not run:
            return Outcome("SELECT")
        return self._query(sql, params or [])

    def _session_command(self, keyword: str, sql: str) -> Outcome:
        if keyword == "set":
            m = _SET.match(sql)
            if m:
                name = next((k for k in self.params if k.lower() == m.group(1).strip('"').lower()), None)
                if name and name not in ("server_version", "server_encoding"):
                    self.params[name] = m.group(2).strip("'")
                if name == "client_encoding" and m.group(2).strip("'").upper().replace("-", "") not in ("UTF8",
                                                                                                      "UNICODE"):
                    raise PgError(f"duckrec serve speaks UTF8 only; client_encoding {m.group(2)} was asked", "22023")
            return Outcome("SET")
        return Outcome({"reset": "RESET", "discard": "DISCARD ALL", "deallocate": "DEALLOCATE",
                        "close": "CLOSE CURSOR", "unlisten": "UNLISTEN"}[keyword])

    def _show(self, sql: str) -> Outcome:
        name = _SHOW.match(sql).group(1).strip().strip('"')
        aliases = {"transaction isolation level": "transaction_isolation", "time zone": "TimeZone"}
        name = aliases.get(name.lower(), name)
        if name.lower() == "all":
            return Outcome("SHOW", [("name", wire.TEXT), ("setting", wire.TEXT)], Rows(sorted(self.params.items())))
        key = next((k for k in self.params if k.lower() == name.lower()), None)
        if key is None:  # DuckDB's own: show tables, show recs.served_recommendations
            return self._query(sql, [])
        return Outcome("SHOW", [(name.lower(), wire.TEXT)], Rows([(self.params[key],)]))

    def _query(self, sql: str, params: list[Any]) -> Outcome:
        import duckdb

        text = rewrite(sql)
        self.close_rows()  # DuckDB answers one query at a time per connection, and a slot is ours
        self.workers.acquire()  # bounded: at most --workers queries run at once, server-wide
        try:
            con = self._connection(sql)  # the build published now; one build for the whole query
            statements = con.extract_statements(text)
            if len(statements) != 1:
                raise PgError(f"one statement per query was expected here, found {len(statements)}", "42601")
            if statements[0].type not in _read_only_types():
                raise PgError(f"duckrec serve is read-only: it answers queries (select, with, values, explain); "
                              f"found a {statements[0].type.name} statement. The warehouse changes only through "
                              "`duckrec build`.", "25006")
            cursor = con.execute(text, params) if params else con.execute(text)
            columns = [(d[0], wire.pg_type(str(d[1]))) for d in (cursor.description or [])]
        except duckdb.Error as e:
            self.workers.release()
            raise pg_error(e) from None
        except BaseException:
            self.workers.release()
            raise
        self._open = Rows(cursor=cursor, release=self.workers.release)
        return Outcome("SELECT", columns, self._open)

    def close_rows(self) -> None:
        """Let go of the rows of a query not read to the end (a suspended or dropped portal)."""
        if self._open is not None:
            self._open.close()
            self._open = None

    def split(self, sql: str) -> list[str]:
        """The statements of a simple Query message, as DuckDB splits them (one when it cannot)."""
        if not sql.strip().strip(";").strip():
            return []
        try:
            parts = [s.query for s in self.reader.connection().extract_statements(rewrite(sql))]
        except Exception:  # noqa: BLE001 - what DuckDB cannot split goes whole, as one statement
            return [sql]
        return parts if len(parts) > 1 else [sql]

    # ------------------------------------------------------------- simple protocol
    def simple_query(self, body: bytes, out) -> None:
        sql = Reader(body).cstr()
        statements = self.split(sql)
        if not statements:
            out.write(wire.message(b"I"))
        for statement in statements:
            try:
                result = self.outcome(statement)
            except PgError as e:
                self._failed(e, out)
                break
            try:
                if result.columns is not None:
                    out.write(wire.row_description(result.columns, []))
                    oids = [oid for _, oid in result.columns]
                    for batch in result.rows.take():
                        for row in batch:
                            out.write(wire.data_row([wire.encode(v, oid, 0) for v, oid in zip(row, oids)]))
            except PgError as e:
                self._failed(e, out)
                break
            finally:
                result.rows.close()
            out.write(wire.command_complete(_tag(result)))
        out.write(wire.ready(self.status))

    def _failed(self, e: PgError, out) -> None:
        if self.status == b"T":
            self.status = b"E"
        out.write(wire.error_response(e))

    # ------------------------------------------------------------- extended protocol
    def parse(self, body: bytes) -> bytes:
        r = Reader(body)
        name, sql = r.cstr(), r.cstr()
        oids = [r.int32() for _ in range(r.int16())]
        self.outcome(sql, run=False)  # refuse what is not a query (or a session command) at once
        self.prepared[name] = Prepared(sql, oids)
        return wire.message(b"1")

    def bind(self, body: bytes) -> bytes:
        r = Reader(body)
        portal, statement = r.cstr(), r.cstr()
        prepared = self._prepared(statement)
        formats = [r.int16() for _ in range(r.int16())]
        raw = []
        for _ in range(r.int16()):
            n = r.int32()
            raw.append(None if n < 0 else r.bytes(n))
        result_formats = [r.int16() for _ in range(r.int16())]
        params = []
        for i, value in enumerate(raw):
            fmt = formats[i] if len(formats) > 1 else (formats[0] if formats else 0)
            oid = prepared.param_oids[i] if i < len(prepared.param_oids) else 0
            try:
                params.append(wire.decode_param(value, oid, fmt))
            except ValueError as e:
                raise PgError(f"parameter ${i + 1}: {e}", "22P02") from None
        self._drop_portal(portal)
        self.portals[portal] = Portal(prepared, params, result_formats)
        return wire.message(b"2")

    def _prepared(self, name: str) -> Prepared:
        if name not in self.prepared:
            raise PgError(f'prepared statement "{name}" does not exist', "26000")
        return self.prepared[name]

    def _run(self, portal: Portal) -> None:
        if portal.rows is None:
            result = self.outcome(portal.prepared.sql, portal.params)
            portal.columns, portal.rows, portal.tag = result.columns, result.rows, result.tag

    def _drop_portal(self, name: str) -> None:
        portal = self.portals.pop(name, None)
        if portal is not None and portal.rows is not None:
            portal.rows.close()

    def describe(self, body: bytes) -> bytes:
        kind, name = body[:1], Reader(body[1:]).cstr()
        if kind == b"S":
            prepared = self._prepared(name)
            columns = self._statement_columns(prepared)
            oids = [o or wire.TEXT for o in prepared.param_oids] + [wire.TEXT] * (
                self._count_params(prepared.sql) - len(prepared.param_oids))
            return wire.parameter_description(oids) + (
                wire.row_description(columns, []) if columns else wire.message(b"n"))
        portal = self._portal(name)
        self._run(portal)
        if portal.columns is None:
            return wire.message(b"n")
        return wire.row_description(portal.columns, self._formats(portal))

    def _statement_columns(self, prepared: Prepared) -> list[tuple[str, int]] | None:
        """A prepared query's columns without its parameters: DuckDB describes it with NULLs bound."""
        keyword = _KEYWORD.match(prepared.sql)
        if keyword and keyword.group(1).lower() == "show":
            return self._show(prepared.sql).columns
        if not keyword or keyword.group(1).lower() in ("set", "begin", "start", "commit", "end", "rollback", "abort",
                                                      "reset", "discard", "deallocate", "close", "savepoint",
                                                      "release", "unlisten"):
            return None
        import duckdb

        n = self._count_params(prepared.sql)
        self.close_rows()
        with self.workers:
            try:
                con = self._connection(prepared.sql)
                rows = con.execute("describe " + rewrite(prepared.sql), [None] * n).fetchall()
            except duckdb.Error:
                return None
        return [(row[0], wire.pg_type(row[1])) for row in rows]

    @staticmethod
    def _count_params(sql: str) -> int:
        return max((int(n) for n in re.findall(r"\$(\d+)", sql)), default=0)

    def _portal(self, name: str) -> Portal:
        if name not in self.portals:
            raise PgError(f'portal "{name}" does not exist', "34000")
        return self.portals[name]

    @staticmethod
    def _formats(portal: Portal) -> list[int]:
        n = len(portal.columns or [])
        if len(portal.formats) == 1:
            return portal.formats * n
        return portal.formats or [0] * n

    def execute(self, body: bytes, out) -> None:
        r = Reader(body)
        portal = self._portal(r.cstr())
        max_rows = r.int32()
        self._run(portal)
        if portal.columns is not None:
            formats = self._formats(portal)
            oids = [oid for _, oid in portal.columns]
            for batch in portal.rows.take(max_rows if max_rows > 0 else None):
                for row in batch:
                    out.write(wire.data_row([wire.encode(v, oid, f) for v, oid, f in zip(row, oids, formats)]))
            if max_rows > 0 and portal.rows.more():
                out.write(wire.message(b"s"))  # PortalSuspended: the client asks for more
                return
            portal.rows.close()
        out.write(wire.command_complete(_tag(portal)))

    def close_object(self, body: bytes) -> bytes:
        kind, name = body[:1], Reader(body[1:]).cstr()
        if kind == b"S":
            self.prepared.pop(name, None)
        else:
            self._drop_portal(name)
        return wire.message(b"3")

    def sync(self) -> bytes:
        self._drop_portal("")
        return wire.ready(self.status)

    def close(self) -> None:
        for name in list(self.portals):
            self._drop_portal(name)
        self.close_rows()

    def fail(self, e: PgError, out) -> None:
        self._failed(e, out)
