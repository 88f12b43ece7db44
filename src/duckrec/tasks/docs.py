"""`duckrec docs generate` and `duckrec docs serve`: the static docs site (duckrec.docs.site)."""
from __future__ import annotations

import argparse
from pathlib import Path

from duckrec.core.errors import DuckrecError


def add_parser(sub, common) -> None:
    sp = sub.add_parser("docs", help="generate or serve the docs site (lineage, models, runs, results)")
    docs = sp.add_subparsers(dest="docs_command", metavar="generate|serve")
    gen = docs.add_parser("generate", help="write the site to target/docs/")
    common(gen, select=False)
    srv = docs.add_parser("serve", help="serve target/docs/ on localhost")
    common(srv, select=False)
    srv.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")


def run(project, args: argparse.Namespace) -> int:
    if args.docs_command == "generate":
        from duckrec.docs.site import generate

        _, problems = generate(project, args.target)
        for p in problems:
            print(f"warning: {p}")
        return 1 if problems else 0
    if args.docs_command == "serve":
        return serve(project.path("target") / "docs", args.host, args.port)
    raise DuckrecError("duckrec docs needs a subcommand: generate or serve")


def serve(folder: Path, host: str, port: int) -> int:
    import functools
    import http.server

    if not (folder / "index.html").exists():
        raise DuckrecError("no docs site yet: run `duckrec docs generate` first", path=str(folder))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    try:
        server = http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as e:
        raise DuckrecError(f"cannot listen on {host}:{port}: {e.strerror}; pass another --port") from None
    print(f"serving {folder} at http://{host}:{server.server_port}/ (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    finally:
        server.server_close()
    return 0
