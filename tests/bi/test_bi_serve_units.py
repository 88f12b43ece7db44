"""Pieces of `duckrec serve` without a socket: users files, SCRAM verifiers, the SQL rewrite."""
from __future__ import annotations

import base64

import pytest

from duckrec.core.errors import DuckrecError
from duckrec.serve.auth import ScramExchange, load_users, make_verifier
from duckrec.serve.catalog import rewrite
from duckrec.serve.wire import text_value


def _verifier_line(password: str) -> str:
    v = make_verifier(password, salt=b"0123456789abcdef")
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"SCRAM-SHA-256${v.iterations}:{b64(v.salt)}${b64(v.stored_key)}:{b64(v.server_key)}"


def test_a_users_file_takes_passwords_and_postgres_verifiers_and_says_what_is_wrong(tmp_path):
    users = tmp_path / "users"
    users.write_text(f"# analysts\nana:pw one\nbob:{_verifier_line('pw two')}\n")
    users.chmod(0o600)
    found = load_users(str(users), environ={"DUCKREC_SERVE_USER": "env", "DUCKREC_SERVE_PASSWORD": "x"})
    assert sorted(found) == ["ana", "bob", "env"]
    assert found["bob"] == make_verifier("pw two", salt=b"0123456789abcdef")
    users.write_text("ana\n")
    with pytest.raises(DuckrecError, match="line 1: expected `user:password`"):
        load_users(str(users), environ={})
    users.chmod(0o644)
    users.write_text("ana:pw\n")
    with pytest.raises(DuckrecError, match="chmod 600"):
        load_users(str(users), environ={})
    with pytest.raises(DuckrecError, match="go together"):
        load_users(None, environ={"DUCKREC_SERVE_USER": "ana"})


def test_scram_refuses_a_wrong_proof_and_an_unknown_user_alike():
    import hashlib
    import hmac

    def proof(exchange: ScramExchange, password: str) -> str:
        server_first = exchange.first("n,,n=,r=clientnonce")
        attrs = dict(p.split("=", 1) for p in server_first.split(","))
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        without = f"c={base64.b64encode(b'n,,').decode()},r={attrs['r']}"
        message = f"n=,r=clientnonce,{server_first},{without}".encode()
        signature = hmac.new(hashlib.sha256(client_key).digest(), message, hashlib.sha256).digest()
        return without + ",p=" + base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature))).decode()

    def answer(verifier, password: str) -> str | None:
        exchange = ScramExchange(verifier)
        return exchange.final(proof(exchange, password))

    verifier = make_verifier("right")
    assert answer(verifier, "right").startswith("v=")
    assert answer(verifier, "wrong") is None
    assert answer(None, "anything") is None  # an unknown user: the same exchange, the same refusal
    other = ScramExchange(verifier)
    other.first("n,,n=,r=clientnonce")
    assert other.final(proof(ScramExchange(verifier), "right")) is None  # another exchange's nonce


def test_the_rewrite_changes_catalog_sql_and_leaves_literals_and_other_sql_alone():
    psql = ("SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname OPERATOR(pg_catalog.~) '^(t)$' "
            "COLLATE pg_catalog.default AND c.oid = 'recs.t'::pg_catalog.regclass AND x::pg_catalog.text = 'a'")
    assert rewrite(psql) == ("SELECT c.oid FROM duckrec_pg.pg_class c WHERE c.relname ~ '^(t)$' AND c.oid = "
                             "duckrec_pg.regclass_of('recs.t') AND x::VARCHAR = 'a'")
    plain = "select 'pg_catalog.pg_class::oid' as s, user_id from recs.served_recommendations"
    assert rewrite(plain) == plain
    assert rewrite("select version()") == "select duckrec_pg.version()"


@pytest.mark.parametrize("value, text", [(True, "t"), (1.5, "1.5"), (float("inf"), "Infinity"), ([1, None, "a b"],
                                         '{1,NULL,"a b"}'), (b"\x01", "\\x01"), ({"a": 1}, '{"a": 1}')])
def test_values_are_sent_as_postgresql_prints_them(value, text):
    assert text_value(value) == text


def test_a_portal_is_sent_in_parts_and_dropping_it_frees_the_worker_slot(tmp_path, tmp_path_factory):
    import io
    import struct
    import threading

    from bi_fixtures import bi_project
    from duckrec.bi.published import LatestReader
    from duckrec.serve.session import Session
    from engine_fixtures import warehouse

    def cstr(text: str) -> bytes:
        return text.encode() + b"\0"

    def kinds(data: bytes) -> list[bytes]:
        found, pos = [], 0
        while pos < len(data):
            found.append(data[pos:pos + 1])
            pos += 1 + struct.unpack("!i", data[pos + 1:pos + 5])[0]
        return found

    workers = threading.BoundedSemaphore(1)  # one slot: a slot left taken would block the next query
    session = Session(LatestReader(warehouse(bi_project(tmp_path, tmp_path_factory))), workers, {})
    session.parse(cstr("") + cstr("select range as n from range(5000)") + struct.pack("!h", 0))
    session.bind(cstr("p") + cstr("") + struct.pack("!hhh", 0, 0, 0))
    out = io.BytesIO()
    session.execute(cstr("p") + struct.pack("!i", 3000), out)
    assert kinds(out.getvalue()) == [b"D"] * 3000 + [b"s"]  # 3000 rows, then PortalSuspended
    out = io.BytesIO()
    session.execute(cstr("p") + struct.pack("!i", 3000), out)
    assert kinds(out.getvalue()) == [b"D"] * 2000 + [b"C"] and out.getvalue().endswith(b"SELECT 5000\0")
    assert workers.acquire(timeout=1)  # read to the end: the slot is back
    workers.release()
    session.bind(cstr("q") + cstr("") + struct.pack("!hhh", 0, 0, 0))
    session.execute(cstr("q") + struct.pack("!i", 10), io.BytesIO())  # suspended, then dropped
    session.close_object(b"P" + cstr("q"))
    assert workers.acquire(timeout=1)
    workers.release()
    session.close()
    session.reader.close()
