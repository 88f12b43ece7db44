"""The `duckrec` command line."""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from duckrec import __version__
from duckrec.core.errors import DuckrecError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="duckrec", description="dbt-style builds of SQL and Python models on DuckDB.")
    p.add_argument("--version", action="version", version=f"duckrec {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def common(sp: argparse.ArgumentParser, select: bool = True) -> None:
        sp.add_argument("--project-dir", default=".", help="folder holding project.yml (default: .)")
        sp.add_argument("--target", "-t", help="target from project.yml (default: its `target:`)")
        sp.add_argument("--vars", help="YAML/JSON mapping overriding project vars, e.g. '{k: 20}'")
        if select:
            sp.add_argument("-s", "--select", nargs="+", default=[], help="dbt selectors: name, folder, +name, name+N, @name, tag:x, path:x, config.k:v, result:error; a comma intersects")
            sp.add_argument("--exclude", nargs="+", default=[], help="same syntax as --select")

    def running(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--full-refresh", action="store_true", help="rebuild incremental models from scratch")
        sp.add_argument("--fail-fast", "-x", action="store_true", help="stop at the first error; skip the rest")
        sp.add_argument("--empty", action="store_true", help="build with every ref()/source() read as zero rows "
                                                            "(checks SQL and contracts fast)")
        sp.add_argument("--threads", type=int, help="DuckDB threads for this build (default: the target's, "
                                                    "else every core)")
        sp.add_argument("--wait", action="store_true",
                        help="wait for another build (or a read-write client) to release the warehouse instead of failing")
        sp.add_argument("--quiet", "-q", action="store_true", help="print only problems and the summary")
        sp.add_argument("--log-format", choices=["text", "json"], default="text",
                        help="json: one JSON object per line, for schedulers")
        sp.add_argument("--publish-partial", action="store_true",
                        help="publish the nodes that succeeded even when others failed (default: all or nothing)")
        sp.add_argument("--fail-on-empty-selection", action="store_true",
                        help="a selector that matches nothing is an error (exit 2) instead of a warning "
                             "(dbt: --warn-error-options '{error: [NoNodesForSelectionCriteria]}')")

    for name, text in (("build", "seeds, models and tests in DAG order"), ("run", "models only"),
                       ("seed", "load seeds only"), ("test", "run data tests only")):
        sp = sub.add_parser(name, help=text)
        common(sp)
        running(sp)
    sp = sub.add_parser("retry", help="rerun what failed, errored or was skipped in the last run")
    common(sp, select=False)
    running(sp)
    sp = sub.add_parser("compile", help="render SQL to target/compiled without running it")
    common(sp)
    sp.add_argument("--inline", help="render this SQL (with Jinja: ref(), macros) and print it")
    sp = sub.add_parser("parse", help="read the project and write target/manifest.json")
    common(sp, select=False)
    sp = sub.add_parser("debug", help="show what duckrec reads and check the warehouse opens")
    common(sp, select=False)
    sp = sub.add_parser("run-operation", help="call a macro on the warehouse (its SQL runs)")
    common(sp, select=False)
    sp.add_argument("macro")
    sp.add_argument("--args", help="YAML/JSON mapping of the macro's arguments")
    sp.add_argument("--wait", action="store_true", help="wait for a running build instead of failing")
    sp = sub.add_parser("ls", help="list nodes")
    common(sp)
    sp.add_argument("--resource-type", choices=["seed", "model", "test"], action="append")
    sp.add_argument("--output", choices=["name", "path", "json"], default="name")
    sp = sub.add_parser("show", help="preview a model or run a read-only query")
    common(sp, select=False)
    sp.add_argument("model", nargs="?", help="model or seed to preview")
    sp.add_argument("-s", "--select", dest="show_select", help="the model or seed to preview (as dbt show -s)")
    sp.add_argument("--inline", "-i", dest="inline", help="an ad-hoc read-only SQL query")
    sp.add_argument("--limit", type=int, default=20, help="rows to show (default 20; 0 = all)")
    sp.add_argument("--format", choices=["table", "csv", "json"], default="table")
    sp = sub.add_parser("source", help="source freshness: the newest loaded_at time vs warn_after/error_after")
    sp.add_argument("action", choices=["freshness"])
    common(sp, select=False)
    from duckrec.docs import add_parser as add_docs_parser

    add_docs_parser(sub, common)
    sp = sub.add_parser("serve", help="answer PostgreSQL clients (psql, BI tools) from the latest published "
                                      "build, read-only")
    common(sp, select=False)
    sp.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; another needs users)")
    sp.add_argument("--port", type=int, default=5433, help="TCP port (default 5433; 0 picks a free one)")
    sp.add_argument("--users-file", help="file of `user:password` or `user:SCRAM-SHA-256$...` lines (chmod 600); "
                                         "also env DUCKREC_SERVE_USER/DUCKREC_SERVE_PASSWORD")
    sp.add_argument("--tls-cert", help="PEM certificate (chain) for TLS")
    sp.add_argument("--tls-key", help="PEM private key for TLS")
    sp.add_argument("--max-connections", type=int, default=64, help="clients at once (default 64)")
    sp.add_argument("--workers", type=int, help="queries running at once (default: cores, at most 8)")
    sp.add_argument("--threads", type=int, default=1, help="DuckDB threads per query (default 1)")
    sp.add_argument("--memory-limit", help="DuckDB memory per session, e.g. 2GB (default: 80%% of RAM / workers)")
    sp = sub.add_parser("clean", help="remove target/")
    sp.add_argument("--project-dir", default=".")
    return p


def _vars(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise DuckrecError(f"--vars is not valid YAML/JSON: {e}") from None
    if not isinstance(value, dict):
        raise DuckrecError(f"--vars must be a mapping like '{{k: 20}}', found {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.command:
        _parser().print_help()
        return 2
    try:
        code = _dispatch(args)
        sys.stdout.flush()  # inside the try: a reader that went away is handled below
        return code
    except BrokenPipeError:
        # `duckrec ls | head`: the reader has what it wanted; stop quietly, as head expects
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except DuckrecError as e:
        if getattr(args, "log_format", "text") == "json":
            import json

            print(json.dumps({"event": "error", "message": str(e), "path": e.path, "line": e.line}), flush=True)
        print(f"error: {e}", file=sys.stderr)
        return _exit_code(e)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


EXIT_LOCKED = 3  # another build, or a read-write client, holds the warehouse


def _exit_code(e: DuckrecError) -> int:
    """The README's table: 1 a node failed, 2 the project or invocation, 3 the warehouse is
    busy (another build, a read-write client), 4 the warehouse file or folder cannot be used."""
    return e.exit_code


def _dispatch(args: argparse.Namespace) -> int:
    from duckrec.parser.project import load_project

    root = Path(args.project_dir)
    if args.command == "clean":
        project = load_project(root)
        for rel in project.clean_targets or [project.paths["target"]]:  # dbt's clean-targets
            target = (project.root / rel).resolve()
            if target == project.root or project.root not in target.parents:
                raise DuckrecError(f"{rel!r} is not a folder inside the project: clean removes only such a folder",
                                   path=project.config_file)
            if target.exists():
                shutil.rmtree(target)
                print(f"removed {target}")
        return 0
    project = load_project(root, _vars(getattr(args, "vars", None)))
    for warning in project.warnings:  # settings of a dbt project that duckrec does not support, once
        print(f"warning: {warning}", file=sys.stderr)
    from duckrec.execute.runner import Options

    options = Options(command=args.command, target=args.target, select=getattr(args, "select", []) or [],
                      exclude=getattr(args, "exclude", []) or [],
                      full_refresh=getattr(args, "full_refresh", False), fail_fast=getattr(args, "fail_fast", False),
                      wait=getattr(args, "wait", False), quiet=getattr(args, "quiet", False),
                      log_format=getattr(args, "log_format", "text"), threads=getattr(args, "threads", None),
                      empty=getattr(args, "empty", False), publish_partial=getattr(args, "publish_partial", False),
                      fail_on_empty_selection=getattr(args, "fail_on_empty_selection", False))
    target = args.target or project.default_target
    if args.command == "retry":
        from duckrec.tasks.commands import retry_selection

        options.command, again = retry_selection(project)
        if not again:
            print("Nothing to retry: the last run had no errors, failures or skipped nodes.")
            return 0
        options.select = again
    if args.command in ("build", "run", "seed", "test", "retry"):
        from duckrec.execute.runner import Runner

        return Runner(project, options).run()
    if args.command == "compile" and args.inline:
        from duckrec.tasks.commands import render_inline

        print(render_inline(project, target, args.inline))
        return 0
    if args.command in ("parse", "debug"):
        from duckrec.tasks import commands

        return getattr(commands, args.command)(project, target, print)
    if args.command == "run-operation":
        from duckrec.tasks.commands import run_operation

        return run_operation(project, target, args.macro, _vars(args.args), args.wait, print)
    if args.command == "compile":
        from duckrec.execute.runner import compile_all

        return compile_all(project, options, print)
    if args.command == "source":
        from duckrec.execute.freshness import run_freshness

        return run_freshness(project, args.target, print)
    if args.command == "ls":
        return _ls(project, options, args)
    if args.command == "show":
        return _show(project, args)
    if args.command == "serve":
        return _serve(project, args)
    if args.command == "docs":
        from duckrec.docs import run as run_docs

        return run_docs(project, args)
    return 2


def _serve(project, args) -> int:
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


def _ls(project, options, args) -> int:
    import json

    from duckrec import graph

    graph.link(project)
    kinds = tuple(args.resource_type or ("seed", "model", "test"))
    from duckrec.state.fingerprint import modified_since_last_build
    from duckrec.render.renderer import Renderer

    warnings: list[str] = []
    chosen = graph.select(project, options.select, options.exclude, kinds, warnings, state_modified=lambda: (
        modified_since_last_build(project, Renderer(project, options.target or project.default_target),
                                  project.warehouse_path(options.target))))
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for uid in graph.order(project.nodes):
        if uid not in chosen:
            continue
        n = project.nodes[uid]
        if args.output == "json":
            print(json.dumps({"unique_id": uid, "name": n.name, "resource_type": n.kind, "path": n.path,
                              "materialized": n.materialized if n.kind == "model" else n.kind,
                              "relation": None if n.kind == "test" else n.relation, "tags": n.tags,
                              "depends_on": n.depends_on}))
        else:
            print(n.path if args.output == "path" else (n.name if n.kind == "test" else f"{n.schema}.{n.name}"))
    return 0


def _show(project, args) -> int:
    from duckrec.core.errors import DuckrecError as Err

    args.model = args.model or args.show_select
    if bool(args.model) == bool(args.inline):
        raise Err("show needs a model name (or -s name) or --inline 'select ...' (one of the two)")
    if args.model:
        node = project.by_name(args.model)
        if node is None:
            from duckrec.core.errors import did_you_mean

            raise Err(f"no model or seed named {args.model!r}." + did_you_mean(args.model, [
                n.name for n in project.nodes.values() if n.kind != "test"]))
        if node.kind == "model" and node.materialized == "ephemeral":
            raise Err(f"model {node.name} is ephemeral: it is inlined into the models that ref it and has no "
                      "table to show; preview a model that refs it, or make it a view")
        sql = f"select * from {node.relation}"
    else:
        from duckrec.tasks.commands import render_inline

        sql = render_inline(project, args.target or project.default_target, args.inline)  # Jinja: ref(), macros
    from duckrec.warehouse.readers import open_reader

    con = open_reader(project.warehouse_path(args.target))
    import duckdb

    try:
        sql = _one_query(con, sql)
        # the newline keeps a trailing `-- comment` in the user's query from eating the wrapper
        limited = f"select * from ({sql}\n) as q limit {args.limit}" if args.limit else sql
        if len(con.extract_statements(limited)) != 1:
            raise Err("show runs one query: the wrapper around it would run more than one statement")
        cur = con.execute(limited)
        cols = [d[0] for d in cur.description]
        rows = cur.fetchall()
    except duckdb.Error as e:
        raise Err(f"query failed: {e}") from None
    finally:
        con.close()
    _print_rows(cols, rows, args.format)
    return 0


def _one_query(con, sql: str) -> str:
    """The text of `sql` when it is exactly one read-only query, else a refusal that says why."""
    import duckdb

    from duckrec.core.errors import DuckrecError as Err
    from duckrec.execute.materialize import clean_sql

    sql = clean_sql(sql)
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as e:
        raise Err(f"query failed: {e}") from None
    if len(statements) != 1:
        raise Err(f"show runs one read-only query; found {len(statements)} statements. Run them one at a time.")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise Err(f"show is read-only: it runs a query (select, from, with, show, describe), found a "
                  f"{kind.name} statement. Write to the warehouse through a model and `duckrec build`.")
    return sql


def _print_rows(cols: list[str], rows: list[tuple], fmt: str) -> None:
    if fmt == "csv":
        import csv

        w = csv.writer(sys.stdout)
        w.writerow(cols)
        w.writerows(rows)
        return
    if fmt == "json":
        import json

        print(json.dumps([dict(zip(cols, r)) for r in rows], default=str, indent=1))
        return
    cells = [[_cell(v) for v in r] for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(cols)]
    print(" | ".join(c.ljust(w) for c, w in zip(cols, widths)))
    print("-+-".join("-" * w for w in widths))
    for r in cells:
        print(" | ".join(v.ljust(w) for v, w in zip(r, widths)))
    print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")


def _cell(v: Any) -> str:
    if v is None:
        return "NULL"
    text = str(v)
    return text if len(text) <= 60 else text[:57] + "..."


if __name__ == "__main__":
    sys.exit(main())
