"""`duckrec serve`: the published warehouse over PostgreSQL's wire protocol, read-only.

A thread per client (socketserver), at most `max_connections` of them, and at most
`workers` queries running at once. Each client has its own `LatestReader`, so each query
runs on the build published when it starts (never on two). TLS through the ssl module;
passwords by SCRAM-SHA-256; with no users configured only loopback and user `duckrec`.
"""
from __future__ import annotations

import ipaddress
import os
import secrets
import socketserver
import ssl
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from duckrec.bi.published import LatestReader
from duckrec.core.errors import DuckrecError
from duckrec.serve import wire
from duckrec.serve.auth import NO_PASSWORD_USER, ScramExchange, Verifier
from duckrec.serve.session import REPORTED, Session
from duckrec.serve.wire import PgError, Reader


@dataclass
class ServeConfig:
    warehouse: Path
    host: str = "127.0.0.1"
    port: int = 5433
    users: dict[str, Verifier] = field(default_factory=dict)
    tls: ssl.SSLContext | None = None
    max_connections: int = 64
    workers: int = 4
    threads: int = 1  # DuckDB threads per query
    memory_limit: str | None = None  # DuckDB memory per session; default: 80% of RAM shared by the workers


def tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    if not cert and not key:
        return None
    if not (cert and key):
        raise DuckrecError("TLS needs both --tls-cert and --tls-key; found only " + ("--tls-cert" if cert else "--tls-key"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise DuckrecError(f"cannot load the TLS certificate and key: {e}", path=cert) from None
    return context


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


STARTUP_TIMEOUT_S = 30


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, config: ServeConfig):
        if not config.users and not is_loopback(config.host):
            raise DuckrecError(f"with no users configured duckrec serve listens on 127.0.0.1 only, and --host "
                               f"{config.host} was asked: set DUCKREC_SERVE_USER and DUCKREC_SERVE_PASSWORD or pass "
                               "--users-file (and --tls-cert/--tls-key off this machine)")
        self.config = config
        self.slots = threading.BoundedSemaphore(config.max_connections)
        self.workers = threading.BoundedSemaphore(config.workers)
        self.backends: dict[int, tuple[int, LatestReader]] = {}
        self.over_limit: set = set()  # sockets accepted past --max-connections, to be refused
        super().__init__((config.host, config.port), Handler)

    def process_request(self, request, client_address) -> None:
        # over the limit the client still gets its TLS answer and then a FATAL error it can show
        # (an error before the SSL exchange reads to libpq as a broken server)
        if not self.slots.acquire(blocking=False):
            self.over_limit.add(request)
        super().process_request(request, client_address)

    def cancel(self, pid: int, secret: int) -> None:
        found = self.backends.get(pid)
        if found and secrets.compare_digest(found[0].to_bytes(4, "big", signed=True),
                                            secret.to_bytes(4, "big", signed=True)):
            found[1].interrupt()


class Handler(socketserver.BaseRequestHandler):
    server: Server

    def handle(self) -> None:
        reader = None
        pid = 0
        over_limit = self.request in self.server.over_limit
        self.server.over_limit.discard(self.request)
        try:
            self.request.settimeout(STARTUP_TIMEOUT_S)  # a client that never finishes logging in lets go of its slot
            sock, stream, params = self._startup(self.request)
            if params is None:
                return
            if over_limit:
                raise PgError(f"too many connections: duckrec serve takes {self.server.config.max_connections} at "
                              "once (--max-connections)", "53300", "FATAL")
            out = sock.makefile("wb")
            self._authenticate(stream, out, params.get("user", ""))
            reader = LatestReader(self.server.config.warehouse, threads=self.server.config.threads,
                                  memory_limit=self.server.config.memory_limit)
            try:
                reader.connection()
            except DuckrecError as e:
                raise PgError(f"cannot open the warehouse: {e}", "3D000", "FATAL") from None
            except Exception as e:  # noqa: BLE001 - duckdb errors, and ours in building the catalog
                raise PgError(f"cannot open the warehouse: {type(e).__name__}: {e}", "XX000", "FATAL") from None
            session = Session(reader, self.server.workers, params)
            self.session = session
            pid, secret = threading.get_ident() & 0x7FFFFFFF, secrets.randbits(31)
            self.server.backends[pid] = (secret, reader)
            out.write(wire.auth_request(0))
            for name in REPORTED:
                out.write(wire.parameter_status(name, session.params[name]))
            out.write(wire.backend_key(pid, secret))
            out.write(wire.ready(b"I"))
            out.flush()
            sock.settimeout(None)  # logged in: idle sessions may stay as long as they like
            self._loop(session, stream, out)
        except PgError as e:  # refused at startup: say why, then hang up
            try:
                self.request.sendall(wire.error_response(e))
            except OSError:
                pass
        except (EOFError, ConnectionError):
            pass  # the client went away
        except (ssl.SSLError, wire.ProtocolError, OSError) as e:
            print(f"duckrec serve: dropped a client at {self.client_address[0]}: {e}", file=sys.stderr, flush=True)
        except Exception as e:  # noqa: BLE001 - a bug of ours: say it, keep serving the others
            import traceback

            print(f"duckrec serve: internal error: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            traceback.print_exc()
        finally:
            if getattr(self, "session", None) is not None:
                self.session.close()  # its worker slot, if it left rows unread
            self.server.backends.pop(pid, None)
            if reader is not None:
                reader.close()
            if not over_limit:
                self.server.slots.release()

    def _startup(self, sock):
        stream = sock.makefile("rb")
        while True:
            code, rest = wire.read_startup(stream)
            if code == wire.SSL_REQUEST:
                if self.server.config.tls is None:
                    sock.sendall(b"N")
                    continue
                sock.sendall(b"S")
                sock = self.server.config.tls.wrap_socket(sock, server_side=True)
                self.request = sock
                stream = sock.makefile("rb")
            elif code == wire.GSSENC_REQUEST:
                sock.sendall(b"N")
            elif code == wire.CANCEL_REQUEST:
                r = Reader(rest)
                self.server.cancel(r.int32(), r.int32())
                return sock, stream, None
            elif code == wire.PROTOCOL_3:
                return sock, stream, wire.startup_params(rest)
            else:
                raise PgError(f"protocol 3.0 was expected, the client asked for {code >> 16}.{code & 0xFFFF}",
                              "0A000", "FATAL")

    def _authenticate(self, stream, out, user: str) -> None:
        users = self.server.config.users
        if not users:
            if user != NO_PASSWORD_USER:
                raise PgError(f'no users are configured, so only user "{NO_PASSWORD_USER}" may connect (without a '
                              f'password); found user "{user}"', "28000", "FATAL")
            return
        exchange = ScramExchange(users.get(user))
        out.write(wire.auth_request(10, b"SCRAM-SHA-256\0\0"))
        out.flush()
        r = Reader(self._password_message(stream))
        if r.cstr() != "SCRAM-SHA-256":
            raise PgError("SCRAM-SHA-256 authentication was expected", "28000", "FATAL")
        try:
            first = r.bytes(r.int32()).decode()
            out.write(wire.auth_request(11, exchange.first(first).encode()))
            out.flush()
            final = exchange.final(self._password_message(stream).decode())
        except (ValueError, KeyError):
            raise PgError("malformed SCRAM-SHA-256 message", "08P01", "FATAL") from None
        if final is None:
            raise PgError(f'password authentication failed for user "{user}"', "28P01", "FATAL")
        out.write(wire.auth_request(12, final.encode()))

    @staticmethod
    def _password_message(stream) -> bytes:
        kind, body = wire.read_message(stream, limit=10_000)
        if kind != b"p":
            raise PgError(f"a password message was expected, found message type {kind!r}", "08P01", "FATAL")
        return body

    def _loop(self, session: Session, stream, out) -> None:
        skipping = False  # after an error in the extended protocol, until Sync
        while True:
            kind, body = wire.read_message(stream)
            if kind == b"X":
                return
            if skipping and kind not in (b"S", b"Q"):
                continue
            try:
                if kind == b"Q":
                    session.simple_query(body, out)
                    out.flush()
                elif kind == b"P":
                    out.write(session.parse(body))
                elif kind == b"B":
                    out.write(session.bind(body))
                elif kind == b"D":
                    out.write(session.describe(body))
                elif kind == b"E":
                    session.execute(body, out)
                elif kind == b"C":
                    out.write(session.close_object(body))
                elif kind == b"S":
                    skipping = False
                    out.write(session.sync())
                    out.flush()
                elif kind == b"H":
                    out.flush()
                else:
                    raise PgError(f"message type {kind!r} is not supported by duckrec serve", "08P01")
            except PgError as e:
                session.fail(e, out)
                skipping = kind != b"Q"
                if kind == b"Q":
                    out.write(wire.ready(session.status))
                out.flush()
            except (EOFError, ConnectionError, OSError):
                raise
            except Exception as e:  # noqa: BLE001 - a bug of ours: the client is told, the server keeps going
                print(f"duckrec serve: internal error: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
                session.fail(PgError(f"internal error in duckrec serve: {type(e).__name__}: {e}", "XX000"), out)
                skipping = kind != b"Q"
                if kind == b"Q":
                    out.write(wire.ready(session.status))
                out.flush()


def serve(config: ServeConfig, say=print) -> None:
    """Listen until interrupted; says where, with what security, first (tests read the port)."""
    if not config.warehouse.exists():
        raise DuckrecError("no warehouse here yet: run `duckrec build` first", path=str(config.warehouse))
    if config.memory_limit is None:
        config.memory_limit = default_memory_limit(config.workers)
    probe = LatestReader(config.warehouse, threads=config.threads, memory_limit=config.memory_limit)
    try:  # a warehouse that cannot be read, or a bad --memory-limit, is said now and not to each client
        probe.connection()
    except Exception as e:
        if isinstance(e, DuckrecError):
            raise
        raise DuckrecError(f"cannot open the warehouse with these settings: {e}", path=str(config.warehouse)) from None
    finally:
        probe.close()
    try:
        server = Server(config)
    except OSError as e:
        raise DuckrecError(f"cannot listen on {config.host}:{config.port}: {e.strerror}") from None
    host, port = server.server_address[:2]
    who = (f"{len(config.users)} user(s), SCRAM-SHA-256 passwords" if config.users else
           f"no users configured: listening on loopback only, user {NO_PASSWORD_USER} gets in WITHOUT a password "
           "(set DUCKREC_SERVE_USER/DUCKREC_SERVE_PASSWORD or --users-file to require one)")
    say(f"duckrec serve: {config.warehouse} read-only, each query on the latest published build")
    say(f"listening on {host}:{port}; TLS {'on' if config.tls else 'off'}; {who}; at most "
        f"{config.max_connections} connections and {config.workers} queries at once")
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


def default_memory_limit(workers: int) -> str:
    """80% of the machine's memory shared by the queries that may run at once (DuckDB's own
    default gives each of the sessions' instances 80%)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return "1GB"
    return f"{max(256, int(total * 0.8 / max(1, workers)) >> 20)}MB"


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))

