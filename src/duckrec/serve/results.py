"""What a query hands back to the session: its rows, fetched as they are sent, and DuckDB's
errors in PostgreSQL's terms."""
from __future__ import annotations

from duckrec.serve.wire import PgError


class Rows:
    """A result's rows, fetched from DuckDB in batches as they are sent, so a big result never
    sits whole in the server's memory. A query's rows hold a worker slot (and their DuckDB
    result) until the last is read or they are closed."""

    BATCH = 2048

    def __init__(self, rows: list[tuple] | None = None, cursor=None, release=None):
        self._pending = list(rows or [])
        self._cursor, self._release = cursor, release
        self.count = 0

    def take(self, limit: int | None = None):
        """Batches of rows, `limit` rows in all at most (all of them when None)."""
        sent = 0
        while limit is None or sent < limit:
            if not self._pending:
                self._fill()
            if not self._pending:
                return
            batch = self._pending[:None if limit is None else limit - sent]
            del self._pending[:len(batch)]
            sent += len(batch)
            self.count += len(batch)
            yield batch

    def more(self) -> bool:
        if not self._pending:
            self._fill()
        return bool(self._pending)

    def _fill(self) -> None:
        if self._cursor is None:
            return
        import duckdb

        try:
            self._pending = self._cursor.fetchmany(self.BATCH)
        except duckdb.Error as e:
            self.close()
            raise pg_error(e) from None
        if not self._pending:
            self.close()

    def close(self) -> None:
        if self._cursor is not None:
            self._cursor = None
            self._release()


def pg_error(e: Exception) -> PgError:
    """A DuckDB error as PostgreSQL reports its kind (SQLSTATE), so clients react as usual."""
    import duckdb

    states = [(duckdb.InterruptException, "57014"), (duckdb.ParserException, "42601"),
              (duckdb.CatalogException, "42P01"), (duckdb.BinderException, "42703"),
              (duckdb.ConversionException, "22P02"), (duckdb.PermissionException, "42501"),
              (duckdb.InvalidInputException, "22023"), (duckdb.OutOfMemoryException, "53200")]
    for kind, state in states:
        if isinstance(e, kind):
            return PgError(str(e), state)
    return PgError(str(e), "XX000")
