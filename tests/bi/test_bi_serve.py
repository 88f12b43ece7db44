"""`duckrec serve` with real clients: psql, psycopg and SQLAlchemy's postgresql dialect.
Each query answers from the latest published build, never a mix; writes are refused;
passwords (SCRAM), TLS and the connection limit work as the README says."""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

psycopg = pytest.importorskip("psycopg")

from bi_fixtures import Served, bi_project, publish  # noqa: E402
from engine_fixtures import run_process  # noqa: E402
from test_bi_dialect import EXPECTED_REFLECTION, MIXED, _reflect  # noqa: E402


def _dsn(served: Served, user: str = "duckrec", **extra: str) -> str:
    parts = {"host": "127.0.0.1", "port": str(served.port), "user": user, "dbname": "warehouse", **extra}
    return " ".join(f"{k}={v}" for k, v in parts.items())


@pytest.fixture
def served(tmp_path, tmp_path_factory):
    """A server of its own, for a test that publishes."""
    root = bi_project(tmp_path, tmp_path_factory)
    with Served(root) as server:
        server.root = root
        yield server


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One server for the tests that only read (a server starts in about a second)."""
    root = bi_project(tmp_path_factory.mktemp("shared"), tmp_path_factory)
    with Served(root) as server:
        server.root = root
        yield server


def _psql(served: Served, command: str, user: str = "duckrec") -> subprocess.CompletedProcess:
    if shutil.which("psql") is None:
        pytest.skip("psql is not installed (Debian: postgresql-client; .ci/run installs it)")
    return subprocess.run(["psql", "-X", "-h", "127.0.0.1", "-p", str(served.port), "-U", user, "-d", "warehouse",
                           "-c", command], capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})


def test_psql_describes_served_recommendations_with_columns_and_comments(shared):
    assert "WITHOUT a password" in "".join(shared.banner)  # no users configured: it says so
    described = _psql(shared, r"\d+ recs.served_recommendations")
    assert described.returncode == 0, described.stderr
    out = described.stdout
    assert 'View "recs.served_recommendations"' in out
    for column, kind, comment in [("user_id", "bigint", "The user the list is for."),
                                  ("title", "text", "The title in natural order."),
                                  ("build_id", "integer", "The build that wrote this row.")]:
        line = next(l for l in out.splitlines() if l.strip().startswith(column + " "))
        assert kind in line and comment in line, line
    assert "View definition:" in out
    listed = _psql(shared, r"\dv+ recs.*")
    assert listed.returncode == 0 and "Recommendations for dashboards" in listed.stdout, listed.stderr
    rows = _psql(shared, "select count(*) as n from recs.served_recommendations; select 41 + 1 as answer")
    assert rows.returncode == 0 and " 6\n" in rows.stdout and " 42\n" in rows.stdout, rows.stdout + rows.stderr


def test_psql_is_refused_writes_and_other_users(shared):
    for statement in ("create table main.mine(x integer)", "delete from recs.recommendations",
                      "attach ':memory:' as other", "copy recs.recommendations to '/tmp/x.csv'"):
        refused = _psql(shared, statement)
        assert refused.returncode != 0 and "duckrec serve is read-only" in refused.stderr, (statement, refused)
    stranger = _psql(shared, "select 1", user="someone")
    assert stranger.returncode != 0 and 'only user "duckrec" may connect' in stranger.stderr


def test_a_publish_is_seen_by_the_next_query_of_open_connections_never_mixed(served, capsys):
    autocommit = psycopg.connect(_dsn(served), autocommit=True)
    in_transaction = psycopg.connect(_dsn(served))  # psycopg opens a transaction block (BEGIN) first
    try:
        for conn in (autocommit, in_transaction):
            assert conn.execute(MIXED).fetchone() == (1, 1)
        for build in (2, 3):
            publish(capsys, served.root, build)
            for conn in (autocommit, in_transaction):
                assert conn.execute(MIXED).fetchone() == (build, build)
                # the extended protocol with parameters (psycopg binds $1 server-side)
                assert conn.execute("select count(*), max(build_id) from recs.served_recommendations "
                                    "where user_id <= %s", (2,)).fetchone() == (4, build)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction, match="read-only"):
            in_transaction.execute("insert into main.build_info values (9)")
        in_transaction.rollback()
        assert in_transaction.execute("select build_id from build_info").fetchone() == (3,)
    finally:
        autocommit.close()
        in_transaction.close()


def test_psycopg_types_and_binary_results(shared):
    with psycopg.connect(_dsn(shared), autocommit=True) as conn:
        row = conn.execute("select 1.5::decimal(10,2) as d, [1, 2] as l, date '2024-01-02' as day, true as b, "
                           "null::varchar as n, 'é' as s, 2.5::double as f").fetchone()
        assert [str(row[0]), row[1], str(row[2]), row[3], row[4], row[5], row[6]] == [
            "1.50", [1, 2], "2024-01-02", True, None, "é", 2.5]
        with conn.cursor(binary=True) as cur:
            assert cur.execute("select 7::integer, 8::bigint, 'x', 0.5::double, false").fetchone() == (
                7, 8, "x", 0.5, False)
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("select * from recs.nothing_here")
        assert conn.execute("show server_version").fetchone() == ("15.0",)
        # a result bigger than one fetch batch, by the extended and by the simple protocol
        assert len(conn.execute("select range as n from range(10000)").fetchall()) == 10000
        with psycopg.ClientCursor(conn) as cur:
            assert len(cur.execute("select range as n from range(10000)").fetchall()) == 10000
            assert cur.rowcount == 10000
        assert ("served_recommendations",) in conn.execute("show tables from recs").fetchall() or \
            "served_recommendations" in str(conn.execute("show all tables").fetchall())


def test_a_cancel_request_stops_a_running_query(shared):
    import threading

    with psycopg.connect(_dsn(shared), autocommit=True) as conn:
        timer = threading.Timer(0.5, conn.cancel_safe)
        timer.start()
        try:
            with pytest.raises(psycopg.errors.QueryCanceled):
                conn.execute("select count(*) from range(1000000000000) a where a % 7 = 3").fetchone()
        finally:
            timer.cancel()
        assert conn.execute("select 1").fetchone() == (1,)  # the session goes on


def test_sqlalchemy_postgresql_inspector_and_pandas_through_the_server(served, capsys):
    sa = pytest.importorskip("sqlalchemy")
    pd = pytest.importorskip("pandas")
    engine = sa.create_engine(f"postgresql+psycopg://duckrec@127.0.0.1:{served.port}/warehouse")
    found = _reflect(engine)
    # PostgreSQL's names for the same types; everything else as through duckrec://
    assert found["columns"] == [[n, {"BigInteger": "BIGINT", "Integer": "INTEGER", "String": "TEXT"}[t], nn, c]
                                for n, t, nn, c in EXPECTED_REFLECTION["columns"]]
    assert {k: v for k, v in found.items() if k != "columns"} == {
        k: v for k, v in EXPECTED_REFLECTION.items() if k != "columns"}
    publish(capsys, served.root, 2)
    frame = pd.read_sql("select build_id from recs.served_recommendations", engine)
    assert set(frame["build_id"]) == {2}
    engine.dispose()


def test_passwords_by_scram_tls_and_the_connection_limit(tmp_path, tmp_path_factory):
    root = bi_project(tmp_path, tmp_path_factory)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                           "-out", str(cert), "-days", "1", "-subj", "/CN=localhost"], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    env = {"DUCKREC_SERVE_USER": "analyst", "DUCKREC_SERVE_PASSWORD": "s3cret pass"}
    with Served(root, "--tls-cert", str(cert), "--tls-key", str(key), "--max-connections", "2", env=env) as served:
        assert "SCRAM-SHA-256" in "".join(served.banner) and "TLS on" in "".join(served.banner)
        with psycopg.connect(_dsn(served, "analyst", password="'s3cret pass'", sslmode="require")) as conn:
            assert conn.pgconn.ssl_in_use
            assert conn.execute("select build_id from build_info").fetchone() == (1,)
            with psycopg.connect(_dsn(served, "analyst", password="'s3cret pass'", sslmode="disable")) as second:
                assert not second.pgconn.ssl_in_use
                with pytest.raises(psycopg.OperationalError, match="too many connections"):
                    psycopg.connect(_dsn(served, "analyst", password="'s3cret pass'"))
        assert 'password authentication failed for user "analyst"' in _refusal(_dsn(served, "analyst",
                                                                                        password="wrong"))
        assert 'password authentication failed for user "duckrec"' in _refusal(_dsn(served, "duckrec",
                                                                                    password="anything"))


def _refusal(dsn: str) -> str:
    """Why a connection is refused; the server frees a closed client's slot just after the
    client has gone, so a refusal for the limit is tried again, a bounded number of times."""
    for _ in range(50):
        try:
            psycopg.connect(dsn).close()
        except psycopg.OperationalError as e:
            if "too many connections" not in str(e):
                return str(e)
        else:
            return "connected"
        time.sleep(0.1)
    return "still too many connections"


def test_serve_refuses_a_public_address_without_users(tmp_path, tmp_path_factory):
    root = bi_project(tmp_path, tmp_path_factory)
    refused = run_process(root, "serve", "--host", "0.0.0.0", "--port", "0", timeout=60)
    assert refused.code == 2 and "listens on 127.0.0.1 only" in refused.err, refused
    assert "Traceback" not in refused.err
    loose = tmp_path / "users.txt"
    loose.write_text("analyst:pw\n")
    loose.chmod(0o644)
    refused = run_process(root, "serve", "--users-file", str(loose), "--port", "0", timeout=60)
    assert refused.code == 2 and "chmod 600" in refused.err, refused


def test_the_bi_modules_stay_out_of_the_engine():
    # the engine must not import the BI layer (nor sqlalchemy) when it builds
    src = Path(__file__).resolve().parents[2] / "src" / "duckrec"
    for module in src.glob("*.py"):
        text = module.read_text()
        if module.name != "cli.py":
            assert "from .serve" not in text and "from .bi" not in text, module
