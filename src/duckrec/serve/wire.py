"""PostgreSQL frontend/backend protocol 3.0: reading and writing messages, and DuckDB values
in PostgreSQL's text (and a few binary) formats. No sockets policy here, only bytes."""
from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import struct
import uuid
from typing import Any

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
PROTOCOL_3 = 196608


class ProtocolError(Exception):
    """The client sent what protocol 3.0 does not allow here."""


class PgError(Exception):
    """An error the client is told about (ErrorResponse) with its SQLSTATE."""

    def __init__(self, message: str, sqlstate: str = "XX000", severity: str = "ERROR"):
        super().__init__(message)
        self.sqlstate, self.severity = sqlstate, severity


def read_exact(stream, n: int) -> bytes:
    data = stream.read(n)
    if data is None or len(data) < n:
        raise EOFError("the client closed the connection")
    return data


def read_startup(stream) -> tuple[int, bytes]:
    """The untyped first message: (code, rest)."""
    length, = struct.unpack("!i", read_exact(stream, 4))
    if not 8 <= length <= 10_000:
        raise ProtocolError(f"a startup message of 8 to 10000 bytes was expected, found a length of {length}")
    body = read_exact(stream, length - 4)
    return struct.unpack("!i", body[:4])[0], body[4:]


def read_message(stream, limit: int = 64 << 20) -> tuple[bytes, bytes]:
    """A typed message: (type byte, body)."""
    kind = read_exact(stream, 1)
    length, = struct.unpack("!i", read_exact(stream, 4))
    if not 4 <= length <= limit:
        raise ProtocolError(f"a message of 4 to {limit} bytes was expected, found a length of {length}")
    return kind, read_exact(stream, length - 4)


def message(kind: bytes, body: bytes = b"") -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


def cstr(text: str) -> bytes:
    return text.encode() + b"\0"


class Reader:
    """Fields of a message body, in order."""

    def __init__(self, body: bytes):
        self.body, self.pos = body, 0

    def cstr(self) -> str:
        end = self.body.index(b"\0", self.pos)
        text = self.body[self.pos:end].decode()
        self.pos = end + 1
        return text

    def int16(self) -> int:
        value, = struct.unpack_from("!h", self.body, self.pos)
        self.pos += 2
        return value

    def int32(self) -> int:
        value, = struct.unpack_from("!i", self.body, self.pos)
        self.pos += 4
        return value

    def bytes(self, n: int) -> bytes:
        value = self.body[self.pos:self.pos + n]
        self.pos += n
        return value


def startup_params(rest: bytes) -> dict[str, str]:
    parts = rest.split(b"\0")
    return {parts[i].decode(): parts[i + 1].decode() for i in range(0, len(parts) - 1, 2) if parts[i]}


# ----------------------------------------------------------------- server messages

def auth_request(code: int, data: bytes = b"") -> bytes:
    return message(b"R", struct.pack("!i", code) + data)


def parameter_status(name: str, value: str) -> bytes:
    return message(b"S", cstr(name) + cstr(value))


def backend_key(pid: int, secret: int) -> bytes:
    return message(b"K", struct.pack("!ii", pid, secret))


def ready(status: bytes) -> bytes:
    return message(b"Z", status)


def command_complete(tag: str) -> bytes:
    return message(b"C", cstr(tag))


def error_response(error: PgError) -> bytes:
    fields = (b"S" + cstr(error.severity) + b"V" + cstr(error.severity) + b"C" + cstr(error.sqlstate)
              + b"M" + cstr(str(error)))
    return message(b"E", fields + b"\0")


def notice(text: str) -> bytes:
    return message(b"N", b"SNOTICE\0VNOTICE\0C00000\0M" + cstr(text) + b"\0")


def row_description(columns: list[tuple[str, int]], formats: list[int]) -> bytes:
    body = struct.pack("!h", len(columns))
    for i, (name, oid) in enumerate(columns):
        fmt = formats[i] if i < len(formats) else 0
        body += cstr(name) + struct.pack("!ihihih", 0, 0, oid, TYPE_SIZES.get(oid, -1), -1, fmt)
    return message(b"T", body)


def parameter_description(oids: list[int]) -> bytes:
    return message(b"t", struct.pack("!h", len(oids)) + b"".join(struct.pack("!i", o) for o in oids))


def data_row(values: list[bytes | None]) -> bytes:
    parts = [struct.pack("!h", len(values))]
    for v in values:
        parts.append(struct.pack("!i", -1) if v is None else struct.pack("!i", len(v)) + v)
    return message(b"D", b"".join(parts))


# ----------------------------------------------------------------- types

BOOL, BYTEA, INT8, INT2, INT4, TEXT, JSON_OID, FLOAT4, FLOAT8, VARCHAR = 16, 17, 20, 21, 23, 25, 114, 700, 701, 1043
DATE, TIME, TIMESTAMP, TIMESTAMPTZ, INTERVAL, NUMERIC, UUID_OID, UNKNOWN = 1082, 1083, 1114, 1184, 1186, 1700, 2950, 705
TYPE_SIZES = {BOOL: 1, INT2: 2, INT4: 4, INT8: 8, FLOAT4: 4, FLOAT8: 8, DATE: 4, TIME: 8, TIMESTAMP: 8,
              TIMESTAMPTZ: 8, UUID_OID: 16}
ARRAY_OF = {BOOL: 1000, INT2: 1005, INT4: 1007, INT8: 1016, TEXT: 1009, FLOAT4: 1021, FLOAT8: 1022, NUMERIC: 1231,
            DATE: 1182, TIMESTAMP: 1115, TIMESTAMPTZ: 1185, UUID_OID: 2951}
_DUCKDB_OIDS = {"BOOLEAN": BOOL, "TINYINT": INT2, "SMALLINT": INT2, "UTINYINT": INT2, "INTEGER": INT4,
                "USMALLINT": INT4, "BIGINT": INT8, "UINTEGER": INT8, "UBIGINT": NUMERIC, "HUGEINT": NUMERIC,
                "UHUGEINT": NUMERIC, "FLOAT": FLOAT4, "DOUBLE": FLOAT8, "VARCHAR": TEXT, "BLOB": BYTEA,
                "DATE": DATE, "TIME": TIME, "TIMESTAMP": TIMESTAMP, "TIMESTAMP_S": TIMESTAMP,
                "TIMESTAMP_MS": TIMESTAMP, "TIMESTAMP_NS": TIMESTAMP, "TIMESTAMP WITH TIME ZONE": TIMESTAMPTZ,
                "INTERVAL": INTERVAL, "UUID": UUID_OID, "JSON": JSON_OID}


def pg_type(duckdb_type: str) -> int:
    """The PostgreSQL type OID a client is told for a DuckDB column type; text for the rest
    (STRUCT, MAP, ...), which are sent as their DuckDB text."""
    text = str(duckdb_type).strip().upper()
    if text.endswith("]"):
        inner = pg_type(text[:text.rindex("[")])
        return ARRAY_OF.get(inner, TEXT)
    if text.startswith("DECIMAL"):
        return NUMERIC
    return _DUCKDB_OIDS.get(text, TEXT)


def text_value(value: Any) -> str:
    """A Python value (as DuckDB hands it) in PostgreSQL's text output format."""
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time, decimal.Decimal, uuid.UUID, int, str)):
        return str(value)
    if isinstance(value, dt.timedelta):
        seconds = value.seconds + value.microseconds / 1e6
        return f"{value.days} days {int(seconds // 3600):02d}:{int(seconds % 3600 // 60):02d}:{seconds % 60:09.6f}"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return "{" + ",".join(_array_item(v) for v in value) + "}"
    if isinstance(value, dict):
        return json.dumps(value, default=str)
    return str(value)


def _array_item(value: Any) -> str:
    if value is None:
        return "NULL"
    text = text_value(value)
    if text == "" or any(c in text for c in ' ,{}"\\') or text.upper() == "NULL":
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def float4_text(value: float) -> str:
    """The shortest text that reads back as the same 32-bit float (0.1, not 0.10000000149011612),
    as PostgreSQL prints a real."""
    packed = struct.pack("!f", value)
    for digits in range(6, 10):
        text = f"{value:.{digits}g}"
        if struct.pack("!f", float(text)) == packed:
            return text
    return repr(value)


_BINARY = {BOOL: "!?", INT2: "!h", INT4: "!i", INT8: "!q", FLOAT4: "!f", FLOAT8: "!d"}


def encode(value: Any, oid: int, fmt: int) -> bytes | None:
    if value is None:
        return None
    if fmt == 0:
        if oid == FLOAT4 and isinstance(value, float) and math.isfinite(value):
            return float4_text(value).encode()
        if oid == ARRAY_OF[FLOAT4] and isinstance(value, (list, tuple)):
            return ("{" + ",".join("NULL" if v is None else float4_text(v) if math.isfinite(v) else text_value(v)
                                   for v in value) + "}").encode()
        return text_value(value).encode()
    if oid in _BINARY:
        return struct.pack(_BINARY[oid], value)
    if oid in (TEXT, VARCHAR, JSON_OID):
        return text_value(value).encode()
    if oid == BYTEA:
        return bytes(value)
    raise PgError(f"binary results are sent for bool, integer, float, text and bytea columns; a column of type "
                  f"oid {oid} was asked for in binary: ask for text format", "0A000")


def decode_param(raw: bytes | None, oid: int, fmt: int) -> Any:
    """A bound parameter as a Python value DuckDB binds; text parameters of unknown type stay text."""
    if raw is None:
        return None
    if fmt == 1:
        if oid in _BINARY:
            return struct.unpack(_BINARY[oid], raw)[0]
        if oid in (TEXT, VARCHAR, UNKNOWN, 0, JSON_OID):
            return raw.decode()
        if oid == BYTEA:
            return raw
        raise PgError(f"binary parameters are taken for bool, integer, float, text and bytea; found type oid {oid}"
                      " in binary: send it as text", "0A000")
    text = raw.decode()
    if oid in (INT2, INT4, INT8):
        return int(text)
    if oid in (FLOAT4, FLOAT8):
        return float(text)
    if oid == NUMERIC:
        return decimal.Decimal(text)
    if oid == BOOL:
        return text.lower() in ("t", "true", "1", "on", "yes", "y")
    return text
