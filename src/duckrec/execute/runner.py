"""Walk the DAG: seeds, models and tests in order, each model's tests right after it."""
from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from duckrec.artifacts import target as artifacts
from duckrec.warehouse import connection
from duckrec.execute import data_tests, freshness, materialize
from duckrec.state import reuse
from duckrec.state.selection import modified_since_last_build
from duckrec import graph
from duckrec.render.test_sql import generic_sql
from duckrec.warehouse.build import Build
from duckrec.warehouse.failures import disk_failure
from duckrec.artifacts.target import NodeResult
from duckrec.core.errors import DuckrecError, ProjectError
from duckrec.execute.progress import NodeProgress, end_summary
from duckrec.core.nodes import Node, Project
from duckrec.render.renderer import Renderer
from duckrec.execute.reporter import Reporter
from duckrec.execute.summaries import summary_lines

KINDS_BY_COMMAND = {"build": ("seed", "model", "test"), "run": ("model",), "seed": ("seed",), "test": ("test",),
                    "compile": ("model", "test")}


@dataclass
class Options:
    command: str = "build"
    target: str | None = None
    select: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    full_refresh: bool = False
    fail_fast: bool = False
    wait: bool = False
    quiet: bool = False
    log_format: str = "text"
    publish_partial: bool = False
    threads: int | None = None
    empty: bool = False
    fail_on_empty_selection: bool = False  # a selector matching nothing is an error (exit 2), not a warning


class Interrupted(BaseException):
    """SIGTERM. A BaseException, like KeyboardInterrupt, so that a Python model's own
    `except Exception` (or the engine's) cannot swallow it and publish a half build."""


def _on_sigterm(signum, frame):  # noqa: ARG001
    raise Interrupted()


class Runner:
    def __init__(self, project: Project, options: Options, reporter: Reporter | None = None):
        self.project = project
        self.opt = options
        self.report = reporter or Reporter(options.quiet, options.log_format)
        self.target = options.target or project.default_target
        self.renderer = Renderer(project, self.target)
        self.renderer.empty = options.empty
        self.notes: list[tuple[Node, str]] = []  # the lines of nodes' `summary` queries

    # ------------------------------------------------------------------ plan
    def plan(self) -> list[str]:
        graph.link(self.project)
        kinds = KINDS_BY_COMMAND[self.opt.command]
        self.selection_warnings: list[str] = []
        strict = self.opt.fail_on_empty_selection
        try:
            chosen = graph.select(self.project, self.opt.select, self.opt.exclude, kinds,
                                  None if strict else self.selection_warnings,  # None: a NoMatch raises
                                  state_modified=lambda: modified_since_last_build(
                                      self.project, self.renderer, self.project.warehouse_path(self.target)))
        except graph.NoMatch as e:
            raise ProjectError(f"{e} It matches nothing, and --fail-on-empty-selection makes that an error; "
                               "nothing ran.") from None
        nodes = self.project.nodes
        full = graph.order(self._gated(nodes)) if self.opt.command == "build" else graph.order(nodes)
        plan = [u for u in full if u in chosen]
        if strict and not plan:
            raise ProjectError(f"the selection ({_selector(self.opt) or 'everything'}) leaves no "
                               f"{' or '.join(kinds)} for `duckrec {self.opt.command}` to run, and "
                               "--fail-on-empty-selection makes that an error; nothing ran.")
        return plan

    def _gated(self, nodes: dict[str, Node]) -> dict[str, Node]:
        """In a build, a node also waits for the tests of what it depends on (dbt build's rule).

        A test that also reads something downstream of the node (a relationships test pointing
        down the DAG) cannot gate it without a cycle; only that test is left out of its gates.
        """
        tests_of: dict[str, list[str]] = {}
        for u, n in nodes.items():
            if n.kind == "test" and n.attached_to:
                tests_of.setdefault(n.attached_to, []).append(u)
        children = graph.children_map(nodes)
        gated: dict[str, Node] = {}
        for u, n in nodes.items():
            extra: list[str] = []
            if n.kind != "test":
                below = None
                for d in n.depends_on:
                    for t in tests_of.get(d, []):
                        if below is None:
                            below = graph.descendants([u], children) | {u}
                        if not any(p in below for p in nodes[t].depends_on):
                            extra.append(t)
            gated[u] = Node(**{**n.__dict__, "depends_on": list(dict.fromkeys(n.depends_on + extra))})
        self._gates = {u: g.depends_on for u, g in gated.items()}
        return gated

    # ------------------------------------------------------------------ run
    def run(self) -> int:
        started = datetime.now()
        t0 = time.perf_counter()
        self._gates: dict[str, list[str]] = {}
        plan = self.plan()
        project = self.project
        path = project.warehouse_path(self.target)
        for warning in self.selection_warnings:
            self.report.info(f"warning: {warning}")
        if not plan and self.selection_warnings:
            self.report.summary("Nothing to do: the selection matches no node.", [])  # dbt's rule: exit 0
            return 0
        self._check_seed_files(plan)
        run_id = os.urandom(6).hex()  # 12 hex digits, as uuid4().hex[:12] gave
        self.renderer.invocation_id, self.renderer.run_started_at = run_id, started
        n_models = sum(1 for u in plan if project.nodes[u].kind != "test")
        self.report.info(f"duckrec {self.opt.command}: {n_models} seeds/models, {len(plan) - n_models} tests, "
                         f"target {self.target} ({path.name})", run_id=run_id)
        results: list[NodeResult] = []
        errors: list[tuple[Node, str]] = []
        old_handler = signal.signal(signal.SIGTERM, _on_sigterm)
        publishes = True
        build = None
        try:
            with Build(path, wait=self.opt.wait, warn=self.report.info, on_wait=self.report.waiting) as build:
                # the build's time starts when it has the warehouse: a --wait behind another build is not its cost
                waited = build.waiter.waited
                t0 += waited
                started += timedelta(seconds=waited)
                self.renderer.run_started_at = started
                con = build.con
                connection.configure(con, project, self.target, self.opt.threads)
                self.catalog = materialize.Catalog(con, fresh=build.fresh)
                self.compiled = artifacts.CompiledWriter(project)
                try:
                    # --empty tables are never reused, nor recorded as built
                    self.reuse = reuse.Reuse(con, project, self.renderer, self.catalog, plan, run_id,
                                             enabled=self.opt.command != "test" and not self.opt.full_refresh
                                             and not self.opt.empty, recording=not self.opt.empty)
                    self._walk(con, plan, results, errors)
                finally:
                    for problem in self.compiled.close():
                        self.report.info(f"warning: {problem}")
                counts = _counts(results)
                status = "error" if counts["n_errors"] else ("warn" if counts["n_warnings"] else "success")
                publishes = not counts["n_errors"] or self.opt.publish_partial
                if publishes:
                    self.reuse.flush(con)
                else:
                    build.restart()  # all or nothing: only this run's history goes into the warehouse
                    con = build.con
                    connection.configure(con, project, self.target, self.opt.threads)
                finished = datetime.now()
                artifacts.record_history(con, {
                    "run_id": run_id, "command": self.opt.command, "target": self.target,
                    "selector": _selector(self.opt), "vars": project.vars, "status": status, "started_at": started,
                    "finished_at": finished, "seconds": time.perf_counter() - t0,
                    "data_watermark": freshness.watermark(con, project), **counts}, results,
                    exists=("_duckrec", "node_runs") in (self.catalog if publishes else materialize.Catalog(con)).relations)
                with _signals_held():  # a signal during the rename waits until the message can be true
                    build.publish()
        except (KeyboardInterrupt, Interrupted):
            if build is not None and build.published:
                self.report.summary("Interrupted after the build was published: the warehouse holds this build.",
                                    [])
            else:
                self.report.summary("Interrupted: nothing was published; the warehouse is as the last build left "
                                    "it.", [])
            return 130
        finally:
            signal.signal(signal.SIGTERM, old_handler)
        elapsed = time.perf_counter() - t0
        artifacts.write_run_results(project, run_id, self.opt.command, elapsed, results, {"published": publishes})
        artifacts.write_manifest(project, self.target)
        parts = [f"{counts['n_success']} ok"]
        for key, word in (("n_reused", "reused"), ("n_errors", "error"), ("n_warnings", "warning"),
                          ("n_skipped", "skipped")):
            if counts[key]:
                parts.append(f"{counts[key]} {word}" + ("s" if counts[key] > 1 and word not in ("skipped", "reused")
                                                    else ""))
        kept = [] if publishes else ["Nothing was published (all or nothing): the warehouse keeps the last good "
                                     "build's tables, plus this run in _duckrec.runs; --publish-partial publishes "
                                     "what succeeded."]
        self.report.notes(self.notes)
        lines, detail = end_summary(results)
        after_wait = f" (after {waited:.1f}s waiting for the warehouse)" if waited else ""
        self.report.summary("\n".join([f"Finished {self.opt.command} in {elapsed:.2f}s{after_wait}: "
                                       + ", ".join(parts) + ".",
                                       *kept, *lines]), errors, run_id=run_id, seconds=round(elapsed, 3),
                            waited_seconds=round(waited, 3), **counts,
                            **detail)
        return 1 if counts["n_errors"] else 0

    def _check_seed_files(self, plan: list[str]) -> None:
        """Before the lock and any work: a required seed without its file stops the build at
        once (exit 2). An optional one builds as an empty table, and its node says so (WARN)."""
        from duckrec.execute.seed_checks import check_seeds

        problems = [c.problem for c in check_seeds(self.project, plan) if c.problem]
        if problems:
            raise ProjectError("\n".join(problems) + "\nNothing was built; the warehouse is untouched.",
                               path=self.project.config_file)

    def _walk(self, con, plan: list[str], results: list[NodeResult], errors: list[tuple[Node, str]]) -> None:
        nodes = self.project.nodes
        blocked: dict[str, str] = {}
        stop = False
        for i, uid in enumerate(plan, 1):
            node = nodes[uid]
            started = datetime.now()
            t = time.perf_counter()
            gates = self._gates.get(uid, node.depends_on) if self.opt.command == "build" else node.depends_on
            cause = next((blocked[d] for d in gates if d in blocked), None)
            if stop or cause:
                message = "skipped: --fail-fast after an error" if stop else f"skipped: upstream {cause} failed"
                result = NodeResult(uid, node.name, node.kind, node.relation, "skipped", started, started, 0.0,
                                    None, message)
                blocked[uid] = cause or node.name
            else:
                result = self._reused(node, started) or self._execute(con, node, started, t)
                if result.status in ("success", "reused") and node.config.get("summary"):
                    lines = summary_lines(con, self.renderer, node)
                    result.summary = "\n".join(filter(None, [result.summary, *lines]))
                if result.summary:
                    self.notes += [(node, line) for line in result.summary.splitlines()]
                if result.status in ("error", "fail"):
                    blocked[uid] = node.name
                    errors.append((node, result.message))
                    stop = self.opt.fail_fast
                elif result.status == "warn":
                    errors.append((node, "warning: " + result.message))
            self.reuse.record(node, result.status, result.rows, started)
            results.append(result)
            self.report.node(i, len(plan), node, result)

    def _reused(self, node: Node, started: datetime) -> NodeResult | None:
        old = self.reuse.reusable(node)
        if old is None:
            return None
        return NodeResult(node.unique_id, node.name, node.kind, node.relation, "reused", started, datetime.now(), 0.0,
                          old.rows)

    def _execute(self, con, node: Node, started: datetime, t: float) -> NodeResult:
        import duckdb

        summaries: list[str] = []  # a Python model's dbt.summary() lines

        def done(status: str, rows: int | None = None, message: str = "") -> NodeResult:
            lines = summaries if status == "success" else []  # a failed node prints nothing
            return NodeResult(node.unique_id, node.name, node.kind, node.relation, status, started, datetime.now(),
                              time.perf_counter() - t, rows, message, "\n".join(lines))

        project = self.project
        compiled = None
        try:
            if node.kind == "seed":
                from duckrec.execute.seeds import load_any_seed

                rows, warning = load_any_seed(con, project, node, self.opt.full_refresh,
                                              lambda m: self.report.log(node, m))
                return done("warn" if warning else "success", rows, warning)
            if node.kind == "test":
                sql = generic_sql(project, node) if node.test["type"] != "singular" \
                    else self.renderer.compile(node)
                compiled = self.compiled.write(node, sql)
                n, cols, rows = data_tests.run_test(con, sql)
                if not n:
                    return done("pass", 0)
                status = "warn" if node.config.get("severity") == "warn" else "fail"
                return done(status, n, data_tests.describe_failures(node, n, cols, rows))
            # dbt's full_refresh: false keeps a model (an appended history) through --full-refresh
            full_refresh = self.opt.full_refresh and node.config.get("full_refresh") is not False
            incremental = materialize.is_incremental_run(self.catalog, node, full_refresh)
            if node.language == "python":
                from duckrec.execute.pymodels import release, run_python_model, stream_error

                try:
                    label = f"{node.schema}.{node.config.get('alias') or node.name}"
                    sql = run_python_model(con, project, node, incremental, lambda m: self.report.log(node, m),
                                           NodeProgress(self.report, node), self.opt.empty, full_refresh,
                                           lambda text: summaries.append(f"{label}: {text}"))
                    sql = _typed(node, sql)
                    try:
                        rows = materialize.materialize(con, self.catalog, node, sql, full_refresh)
                    except duckdb.Error:
                        error = stream_error(con)  # a streamed result's own exception, not DuckDB's wrapping
                        if error is None:
                            raise
                        raise error from None
                    return done("success", rows)
                finally:
                    release(con)
            sql = self.renderer.compile(node, incremental)
            compiled = self.compiled.write(node, sql)
            return done("success", materialize.materialize(con, self.catalog, node, sql, full_refresh))
        except DuckrecError as e:
            return done("error", message=str(e))
        except duckdb.Error as e:
            if disk_failure(e):
                raise  # the disk, not this node: the whole build stops, nothing is published
            return self._sql_error(done, node, compiled, e)
        except Exception as e:  # noqa: BLE001 - one node's surprise must not throw away the whole build
            import traceback

            if disk_failure(e):
                raise

            return done("error", message=f"internal error while building {node.name}: {type(e).__name__}: {e}\n"
                                         + traceback.format_exc(limit=-3).rstrip())

    def _sql_error(self, done, node: Node, compiled, e: Exception) -> NodeResult:
        where = f" (compiled SQL: {compiled.relative_to(self.project.root)})" if compiled else ""
        kind = "test" if node.kind == "test" else f"{node.kind} {node.relation}"
        return done("error", message=f"SQL error in {kind}{where}: {e}")


@contextlib.contextmanager
def _signals_held():
    """SIGINT and SIGTERM are held (not lost) while the block runs, then delivered."""
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _typed(node: Node, sql: str) -> str:
    """A Python model's frame cast to the data_type its YAML declares (JSON, DECIMAL, ...),
    which a DataFrame cannot carry."""
    casts = [f'"{c.name}"::{c.data_type} as "{c.name}"' for c in node.columns.values() if c.data_type]
    if not casts:
        return sql
    return f"select * replace ({', '.join(casts)}) from ({sql})"


def _selector(opt: Options) -> str | None:
    text = " ".join(opt.select) + (" --exclude " + " ".join(opt.exclude) if opt.exclude else "")
    return text.strip() or None


def _counts(results: list[NodeResult]) -> dict[str, int]:
    return {
        "n_success": sum(r.status in ("success", "pass") for r in results),
        "n_errors": sum(r.status in ("error", "fail") for r in results),
        "n_warnings": sum(r.status == "warn" for r in results),
        "n_skipped": sum(r.status == "skipped" for r in results),
        "n_reused": sum(r.status == "reused" for r in results),
    }



