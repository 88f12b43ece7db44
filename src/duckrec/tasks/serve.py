"""`duckrec serve`: the published warehouse over the PostgreSQL wire protocol."""
from __future__ import annotations


from duckrec.core.errors import DuckrecError


def serve_command(project, args) -> int:
    from duckrec.serve.auth import load_users
    from duckrec.serve.server import ServeConfig, default_workers, serve, tls_context

    for name in ("max_connections", "workers", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise DuckrecError(f"--{name.replace('_', '-')} must be 1 or more, found {value}")
    config = ServeConfig(project.warehouse_path(args.target), host=args.host, port=args.port,
                         users=load_users(args.users_file), tls=tls_context(args.tls_cert, args.tls_key),
                         max_connections=args.max_connections, workers=args.workers or default_workers(),
                         threads=args.threads, memory_limit=args.memory_limit)
    serve(config, lambda text: print(text, flush=True))
    return 0
