"""Fingerprints: what determines a node, so a build can reuse what did not change.

A node's fingerprint is a hash of
- its definition: the compiled SQL (macros and the vars it reads are rendered into it) or,
  for a Python model, its source, the vars it reads (all vars when a `dbt.var()` name is not
  a literal) and the source of the project modules and `duckrec` sub-packages it imports
  (other imports count by their installed version); plus its config and kind;
- its data, for seeds (the content of each file) and for sources that no node builds (the
  row count and an order-independent hash of the rows);
- its parents' fingerprints.

The fingerprint each node was last built with is kept in `_duckrec.node_state`, inside the
warehouse, so it is published (or thrown away) together with the tables it describes.
A build reuses a node when its fingerprint equals the stored one, its relation still
exists and it last succeeded; a data test is reused when it last passed.
"""
from __future__ import annotations

import ast
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .project import Node, Project

STATE_DDL = """
create schema if not exists _duckrec;
create table if not exists _duckrec.node_state (
    unique_id varchar primary key, fingerprint varchar, definition varchar, run_id varchar,
    built_at timestamp, status varchar, rows bigint, detail json);
"""

STATE_TYPES = ["varchar", "varchar", "varchar", "varchar", "timestamp", "varchar", "bigint", "json"]

HASHED_CHUNK = 1 << 20


@dataclass
class Stored:
    fingerprint: str
    definition: str
    status: str
    rows: int | None
    detail: dict[str, Any]


def _h(*parts: Any) -> str:
    digest = hashlib.sha256()
    for p in parts:
        text = p if isinstance(p, str) else json.dumps(p, sort_keys=True, default=str)
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()[:32]


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASHED_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_state(con) -> dict[str, Stored]:
    """The stored state of a warehouse connection; empty when it has none yet."""
    try:
        rows = con.execute("select unique_id, fingerprint, definition, status, rows, detail "
                           "from _duckrec.node_state").fetchall()
    except Exception:  # noqa: BLE001 - a warehouse built before fingerprints, or none at all
        return {}
    return {r[0]: Stored(r[1], r[2], r[3], r[4], json.loads(r[5]) if r[5] else {}) for r in rows}


def read_published_state(path: Path) -> dict[str, Stored]:
    """The state of the published warehouse file (for `state:` selection)."""
    if not path.exists():
        return {}
    import duckdb

    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return {}
    try:
        return read_state(con)
    finally:
        con.close()


# --------------------------------------------------------------------- Python models

def python_vars_read(code: str) -> list[str] | None:
    """Names of the vars a Python model reads with literal `dbt.var('name')`; None when one
    name is not a literal (then every var counts)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(code)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "var"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "dbt"):
            if not node.args or not (isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                return None
            names.append(node.args[0].value)
    return sorted(set(names))


def _imports(code: str) -> list[str]:
    out: list[str] = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append(node.module)
    return sorted(set(out))


def _module_code(project: Project, module: str, cache: dict[str, str]) -> str:
    """What an imported module contributes: the source of a project-local module, of the
    duckrec (sub-)package it belongs to, else the installed distribution's version."""
    if module in cache:
        return cache[module]
    top = module.split(".")[0]
    found = ""
    for base in (project.root, project.path("python_models")):
        for candidate in (base / (module.replace(".", "/") + ".py"), base / module.replace(".", "/")):
            if candidate.exists():
                found = _tree_hash(candidate)
                break
        if found:
            break
    if not found and top == "duckrec":
        import importlib.util

        try:
            spec = importlib.util.find_spec(module)
        except ImportError:
            spec = None
        if spec is not None and spec.origin:
            origin = Path(spec.origin)
            # a module counts with its whole package: it imports its siblings
            found = _tree_hash(origin.parent)
    if not found and top not in sys.stdlib_module_names:
        from importlib import metadata

        try:
            found = f"{top}=={metadata.version(top)}"
        except metadata.PackageNotFoundError:
            found = f"{top} (version unknown)"
    cache[module] = found
    return found


def _tree_hash(path: Path) -> str:
    files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return _h(*[f"{f.name}:{file_hash(f)}" for f in files])


# --------------------------------------------------------------------- the fingerprints

class Fingerprints:
    """Computes each node's definition hash and fingerprint, parents first, once per build."""

    def __init__(self, project: Project, renderer, stored: dict[str, Stored]):
        self.project = project
        self.renderer = renderer
        self.stored = stored
        self._definition: dict[str, str] = {}
        self._fingerprint: dict[str, str] = {}
        self._modules: dict[str, str] = {}
        self.detail: dict[str, dict[str, Any]] = {}

    # what the node itself is, without its inputs
    def definition(self, node: Node) -> str:
        uid = node.unique_id
        if uid not in self._definition:
            # whether a seed may be absent (+optional) does not change what a present file loads,
            # and an absent file changes the seed's data fingerprint anyway
            config = {k: v for k, v in node.config.items() if k != "optional"}
            self._definition[uid] = _h(node.kind, node.language, config, self._code(node))
        return self._definition[uid]

    def _code(self, node: Node) -> Any:
        if node.kind == "seed":
            return [node.path, node.raw_code]
        if node.kind == "test" and node.test and node.test.get("type") != "singular":
            from .data_tests import generic_sql

            return generic_sql(self.project, node)
        if node.language == "python":
            read = python_vars_read(node.raw_code)
            variables = self.project.vars if read is None else {k: self.project.vars.get(k) for k in read}
            modules = {m: _module_code(self.project, m, self._modules) for m in _imports(node.raw_code)}
            return [node.raw_code, variables, modules]
        # an incremental model: both renderings, so the vars and refs of its is_incremental()
        # branch count (a ref the parser could not see fails here, and the model then runs
        # and fails with the engine's message instead of being reused)
        branches = (False, True) if node.materialized == "incremental" else (False,)
        return [node.raw_code] + [self.renderer.compile(node, b) for b in branches]

    def data(self, node: Node, con) -> Any:
        """Data fingerprint of a seed (its file contents) or of an external source."""
        if node.kind == "seed":
            from .seeds import seed_files

            files = seed_files(self.project, node)
            stamps = []
            for f in files:
                st = f.stat()
                name = str(f.relative_to(self.project.root)) if f.is_relative_to(self.project.root) else str(f)
                stamps.append([name, st.st_size, file_hash(f)])
            self.detail[node.unique_id] = {"files": stamps}
            return stamps
        return None

    def source_data(self, con) -> dict[tuple[str, str], str]:
        """Row count and row hash of each declared source that no seed builds."""
        seeds = {n.relation for n in self.project.nodes.values() if n.kind == "seed"}
        out: dict[tuple[str, str], str] = {}
        for key, src in self.project.sources.items():
            if src.relation in seeds:
                continue
            try:
                out[key] = str(con.execute(f"select count(*), sum(hash(t)) from {src.relation} t").fetchone())
            except Exception:  # noqa: BLE001 - a missing source fails its models, not the fingerprint
                out[key] = "missing"
        return out

    def fingerprint(self, node: Node, con=None, sources: dict | None = None,
                    actual: dict[str, str] | None = None) -> str:
        """`actual`: the fingerprint a parent's relation really has in this build (a parent
        not built by it keeps the one it was stored with)."""
        uid = node.unique_id
        if uid in self._fingerprint:
            return self._fingerprint[uid]
        parents = []
        for d in sorted(node.depends_on):
            if actual is not None and d in actual:
                parents.append([d, actual[d]])
            elif d in self.project.nodes:
                parents.append([d, self.fingerprint(self.project.nodes[d], con, sources, actual)])
        src = [[list(s), (sources or {}).get(s)] for s in node.sources]
        fp = _h(self.definition(node), parents, src, self.data(node, con) if node.kind == "seed" else None)
        self._fingerprint[uid] = fp
        return fp


def modified(project: Project, renderer, stored: dict[str, Stored]) -> set[str]:
    """state:modified: nodes that are new or whose own definition changed since the last build."""
    fps = Fingerprints(project, renderer, stored)
    out = set()
    for uid, node in project.nodes.items():
        old = stored.get(uid)
        if old is None or old.definition != fps.definition(node):
            out.add(uid)
        elif node.kind == "seed":
            if old.detail.get("files") != fps.data(node, None):
                out.add(uid)
    return out


def modified_since_last_build(project: Project, renderer, warehouse: Path) -> set[str]:
    """`state:modified` against the published warehouse's node_state."""
    return modified(project, renderer, read_published_state(warehouse))


class StateWriter:
    """Keeps `_duckrec.node_state` of the build's private copy in step with what it built."""

    def __init__(self, con, exists: bool):
        self.fresh = not exists  # a table this build created holds no rows to replace
        if not exists:
            con.execute(STATE_DDL)
        self.rows: list[list[Any]] = []
        self.drop: list[str] = []

    def built(self, uid: str, fingerprint: str, definition: str, run_id: str, built_at, status: str,
              rows: int | None, detail: dict[str, Any] | None) -> None:
        self.rows.append([uid, fingerprint, definition, run_id, built_at, status, rows,
                          json.dumps(detail or {}, default=str)])

    def failed(self, uid: str) -> None:
        self.drop.append(uid)

    def flush(self, con) -> None:
        from .readers import insert_rows

        ids = [r[0] for r in self.rows] + self.drop
        if ids and not self.fresh:
            con.execute("delete from _duckrec.node_state where unique_id in (select unnest(?::varchar[]))", [ids])
        insert_rows(con, "_duckrec.node_state", STATE_TYPES, self.rows)


REUSABLE = {"success": "success", "pass": "pass", "reused": None}


class Reuse:
    """The runner's hook: decide per node whether its relation can be reused, and record
    the fingerprint each built node now has."""

    def __init__(self, con, project: Project, renderer, catalog, plan: list[str], run_id: str,
                 enabled: bool, recording: bool = True):
        self.project = project
        self.catalog = catalog
        self.run_id = run_id
        self.enabled = enabled
        self.recording = recording
        self.stored = read_state(con)
        self.fps = Fingerprints(project, renderer, self.stored)
        self.sources = self.fps.source_data(con) if project.sources else {}
        planned = set(plan)
        # a node this build does not touch keeps the relation its stored fingerprint describes
        self.actual = {u: s.fingerprint for u, s in self.stored.items() if u not in planned}
        self.writer = StateWriter(con, exists=("_duckrec", "node_state") in catalog.relations)

    def fingerprint(self, node: Node) -> str | None:
        try:
            return self.fps.fingerprint(node, None, self.sources, self.actual)
        except Exception:  # noqa: BLE001 - a node that cannot render fails when it runs, with its message
            return None

    def reusable(self, node: Node) -> Stored | None:
        """The stored state to reuse, or None when the node must run."""
        if not self.enabled:
            return None
        old = self.stored.get(node.unique_id)
        fp = self.fingerprint(node)
        if old is None or fp is None or old.fingerprint != fp:
            return None
        if node.kind == "test":
            return old if old.status in ("pass", "reused") else None
        if old.status not in ("success", "reused"):
            return None
        if node.kind == "model" and node.materialized == "ephemeral":
            return old
        return old if self.catalog.kind(node) is not None else None

    def record(self, node: Node, status: str, rows: int | None, when) -> None:
        uid = node.unique_id
        old = self.stored.get(uid)
        if not self.recording:
            if status not in ("skipped", "reused"):
                self.actual[uid] = "unrecorded"
                self.writer.failed(uid)
            return
        if status == "warn" and node.kind != "test":
            status = "success"  # built, with a warning already reported (a seed's malformed rows)
        if status in ("success", "pass"):
            fp = self.fingerprint(node)
            if fp is None:
                self.writer.failed(uid)
                return
            self.actual[uid] = fp
            self.writer.built(uid, fp, self.fps.definition(node), self.run_id, when, status, rows,
                              self.fps.detail.get(uid))
        elif status == "reused":
            self.actual[uid] = old.fingerprint if old else ""
        else:
            # failed, warned or skipped: the relation (if any) is the one stored; a failure or
            # warning is not reused, so the next build runs the node again
            self.actual[uid] = old.fingerprint if old else "absent"
            if status != "skipped":
                self.writer.failed(uid)

    def flush(self, con) -> None:
        self.writer.flush(con)
