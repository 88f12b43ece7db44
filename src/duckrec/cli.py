"""The `duckrec` command line."""
from __future__ import annotations

import argparse
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
    from duckrec.tasks.docs import add_parser as add_docs_parser

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
        from duckrec.tasks.clean import clean

        return clean(load_project(root), print)
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
        from duckrec.tasks.retry import retry_selection

        options.command, again = retry_selection(project)
        if not again:
            print("Nothing to retry: the last run had no errors, failures or skipped nodes.")
            return 0
        options.select = again
    if args.command in ("build", "run", "seed", "test", "retry"):
        from duckrec.tasks.build import build

        return build(project, options)
    if args.command == "compile" and args.inline:
        from duckrec.tasks.compile import render_inline

        print(render_inline(project, target, args.inline))
        return 0
    if args.command == "parse":
        from duckrec.tasks.parse import parse

        return parse(project, target, print)
    if args.command == "debug":
        from duckrec.tasks.debug import debug

        return debug(project, target, print)
    if args.command == "run-operation":
        from duckrec.tasks.run_operation import run_operation

        return run_operation(project, target, args.macro, _vars(args.args), args.wait, print)
    if args.command == "compile":
        from duckrec.tasks.compile import compile_all

        return compile_all(project, options, print)
    if args.command == "source":
        from duckrec.tasks.source_freshness import run_freshness

        return run_freshness(project, args.target, print)
    if args.command == "ls":
        from duckrec.tasks.ls import ls

        return ls(project, options, args)
    if args.command == "show":
        from duckrec.tasks.show import show

        return show(project, args)
    if args.command == "serve":
        from duckrec.tasks.serve import serve_command

        return serve_command(project, args)
    if args.command == "docs":
        from duckrec.tasks.docs import run as run_docs

        return run_docs(project, args)
    return 2














if __name__ == "__main__":
    sys.exit(main())
