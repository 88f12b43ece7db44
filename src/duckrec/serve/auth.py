"""Who may connect to `duckrec serve`, and SCRAM-SHA-256 (RFC 5802/7677, as PostgreSQL does
it): the password never crosses the wire and the server keeps only verifiers."""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from duckrec.core.errors import DuckrecError

ITERATIONS = 4096
NO_PASSWORD_USER = "duckrec"


@dataclass(frozen=True)
class Verifier:
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes


def _hmac(key: bytes, text: bytes) -> bytes:
    return hmac.new(key, text, hashlib.sha256).digest()


def make_verifier(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> Verifier:
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return Verifier(salt, iterations, hashlib.sha256(_hmac(salted, b"Client Key")).digest(),
                    _hmac(salted, b"Server Key"))


def parse_verifier(text: str) -> Verifier:
    """PostgreSQL's stored form, `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`."""
    _, counts, keys = text.split("$")
    iterations, salt = counts.split(":")
    stored, server = keys.split(":")
    return Verifier(base64.b64decode(salt), int(iterations), base64.b64decode(stored), base64.b64decode(server))


def load_users(users_file: str | None, environ: dict[str, str] | None = None) -> dict[str, Verifier]:
    """Users from DUCKREC_SERVE_USER/DUCKREC_SERVE_PASSWORD and from `users_file` (one
    `user:password` or `user:SCRAM-SHA-256$...` verifier a line, `#` comments)."""
    env = os.environ if environ is None else environ
    users: dict[str, Verifier] = {}
    user, password = env.get("DUCKREC_SERVE_USER"), env.get("DUCKREC_SERVE_PASSWORD")
    if bool(user) != bool(password):
        raise DuckrecError("DUCKREC_SERVE_USER and DUCKREC_SERVE_PASSWORD go together: found only "
                           + ("DUCKREC_SERVE_USER" if user else "DUCKREC_SERVE_PASSWORD"))
    if user and password:
        users[user] = make_verifier(password)
    if users_file:
        users.update(_read_users_file(Path(users_file)))
    return users


def _read_users_file(path: Path) -> dict[str, Verifier]:
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode
    except OSError as e:
        raise DuckrecError(f"cannot read the users file: {e.strerror}", path=str(path)) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO) and "SCRAM-SHA-256$" not in text:
        raise DuckrecError("the users file holds passwords and others may read it: chmod 600 it (or store "
                           "SCRAM-SHA-256 verifiers instead of passwords)", path=str(path))
    users: dict[str, Verifier] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, secret = line.partition(":")
        if not sep or not name or not secret:
            raise DuckrecError(f"line {number}: expected `user:password` or `user:SCRAM-SHA-256$...`, found "
                               f"{line[:40]!r}", path=str(path))
        try:
            users[name] = parse_verifier(secret) if secret.startswith("SCRAM-SHA-256$") else make_verifier(secret)
        except ValueError:
            raise DuckrecError(f"line {number}: a SCRAM-SHA-256 verifier as PostgreSQL stores it was expected "
                               "(SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>)", path=str(path)) from None
    return users


class ScramExchange:
    """The server's side of one SCRAM-SHA-256 login. `first()` answers the client's first
    message; `final()` checks its proof and returns the server's signature message, or None
    when the password was wrong (or the user unknown: the exchange runs the same with a
    made-up verifier so a client cannot tell which)."""

    def __init__(self, verifier: Verifier | None):
        self.known = verifier is not None
        self.verifier = verifier or make_verifier(secrets.token_hex(16), iterations=ITERATIONS)
        self.nonce = ""
        self.client_first_bare = self.server_first = self.gs2_header = ""

    def first(self, client_first: str) -> str:
        header, _, bare = client_first.partition("n=")
        if header not in ("n,,", "y,,"):
            raise ValueError(f"SCRAM without channel binding was expected (n,, or y,,), found {header!r}")
        self.gs2_header, self.client_first_bare = header, "n=" + bare
        attrs = dict(part.split("=", 1) for part in self.client_first_bare.split(","))
        self.nonce = attrs["r"] + base64.b64encode(os.urandom(18)).decode()
        self.server_first = (f"r={self.nonce},s={base64.b64encode(self.verifier.salt).decode()},"
                             f"i={self.verifier.iterations}")
        return self.server_first

    def final(self, client_final: str) -> str | None:
        without_proof, _, proof = client_final.rpartition(",p=")
        attrs = dict(part.split("=", 1) for part in without_proof.split(","))
        if attrs.get("r") != self.nonce or base64.b64decode(attrs.get("c", "")) != self.gs2_header.encode():
            return None
        auth_message = f"{self.client_first_bare},{self.server_first},{without_proof}".encode()
        signature = _hmac(self.verifier.stored_key, auth_message)
        client_key = bytes(a ^ b for a, b in zip(base64.b64decode(proof), signature))
        if not self.known or not hmac.compare_digest(hashlib.sha256(client_key).digest(), self.verifier.stored_key):
            return None
        return "v=" + base64.b64encode(_hmac(self.verifier.server_key, auth_message)).decode()
