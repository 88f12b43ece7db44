"""Fingerprints: what determines a node, so a build can reuse what did not change.

A node's fingerprint is a hash of
- its definition: the engine's version; the compiled SQL (macros and the vars it reads are
  rendered into it) or, for a Python model, its source, the vars it reads (all vars when a
  `dbt.var()` name is not a literal) and every piece of code it imports, transitively: the
  project's own modules keyed by path, the `duckrec` packages by their whole source, and
  any other library by its installed version; its config and its columns' declared types;
- its data, for seeds (the content of each file) and for sources that no node builds (the
  row count and an order-independent hash of the rows);
- its parents' fingerprints, as the relations this build reads really are (`state/reuse.py`).

Metadata (tags, meta, summary, docs, descriptions, persist_docs) has a hash of its own: a
change there refreshes the comments a BI tool reads and rebuilds nothing (SQLMesh keeps its
metadata hash apart from its data hash for the same reason).
"""
from __future__ import annotations

import ast
import functools
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from duckrec import __version__
from duckrec.core.nodes import Node, Project

ENGINE = f"duckrec {__version__}"
# config that changes what a reader is told about a relation, never its rows
METADATA_KEYS = frozenset({"tags", "meta", "summary", "persist_docs", "docs", "description", "group", "grants"})
HASHED_CHUNK = 1 << 20


def digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        text = p if isinstance(p, str) else json.dumps(p, sort_keys=True, default=str)
        h.update(text.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()[:32]


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASHED_CHUNK):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------- Python code

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


def imported_modules(code: str, package: str = "") -> list[str]:
    """The modules `code` imports, relative imports resolved against `package`."""
    out: list[str] = []
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return out
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1] if package else []
                stem = ".".join(p for p in base + [node.module or ""] if p)
                out.extend([stem] if node.module else [f"{stem}.{a.name}".strip(".") for a in node.names])
            elif node.module:
                out.append(node.module)
                out.extend(f"{node.module}.{a.name}" for a in node.names)  # `from pkg import module`
    return sorted(set(m for m in out if m))


class CodeClosure:
    """Everything a Python model's code depends on, transitively, as {key: hash or version}.

    Project modules are keyed by their path from the project root (two helpers named
    `util.py` in different folders are two entries), `duckrec` packages by their folder, and
    other libraries by `dist <name>` with the installed version. Each module's contribution
    is worked out once per build."""

    def __init__(self, project: Project):
        self.project = project
        self._of: dict[str, dict[str, str]] = {}
        # the order pymodels puts on sys.path: python_models/ first, then the project root
        self.bases = [project.path("python_models"), project.root]

    def of_code(self, code: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for module in imported_modules(code):
            out.update(self.of_module(module))
        return out

    def of_module(self, module: str) -> dict[str, str]:
        if module not in self._of:
            self._of[module] = {}  # a cycle of imports ends here
            self._of[module] = self._contribution(module)
        return self._of[module]

    def _contribution(self, module: str) -> dict[str, str]:
        local = self._local_file(module)
        if local is not None:
            key = str(local.relative_to(self.project.root)) if local.is_relative_to(self.project.root) else str(local)
            out = {key: file_hash(local)}
            package = module if local.name == "__init__.py" else module.rpartition(".")[0]
            for sub in imported_modules(local.read_text(encoding="utf-8", errors="replace"), package):
                out.update(self.of_module(sub))
            return out
        top = module.split(".")[0]
        if top == "duckrec":
            folder = _package_folder(module)
            return {} if folder is None else dict(_package_contribution(folder))
        if top in sys.stdlib_module_names or top == "__future__":
            return {}
        name, version = _distribution(top)
        return {f"dist {name}": version}

    def _local_file(self, module: str) -> Path | None:
        rel = module.replace(".", "/")
        for base in self.bases:
            for candidate in (base / f"{rel}.py", base / rel / "__init__.py"):
                if candidate.is_file():
                    return candidate
        return None


# the duckrec package's own folder (this file is duckrec/state/fingerprint.py)
DUCKREC_FOLDER = Path(__file__).resolve().parent.parent


@functools.lru_cache(maxsize=None)
def _package_contribution(folder: Path) -> tuple[tuple[str, str], ...]:
    """A duckrec package: its whole source, and the versions of the libraries it imports."""
    root = DUCKREC_FOLDER.parent
    out = {f"package {folder.resolve().relative_to(root)}": tree_hash(folder)}
    for f in sorted(folder.rglob("*.py")):
        package = ".".join(f.resolve().relative_to(root).with_suffix("").parts[:-1])
        for sub in imported_modules(f.read_text(encoding="utf-8"), package):
            top = sub.split(".")[0]
            if top != "duckrec" and top not in sys.stdlib_module_names and top != "__future__":
                name, version = _distribution(top)
                out[f"dist {name}"] = version
    return tuple(sorted(out.items()))


@functools.lru_cache(maxsize=None)
def _package_folder(module: str) -> Path | None:
    """The folder of the duckrec (sub-)package a module belongs to, found on disk without
    importing it (importing duckrec.ml would import torch): a module counts with its whole
    package, since it imports its siblings."""
    parts = module.split(".")[1:]
    folder = DUCKREC_FOLDER
    for part in parts:
        if not (folder / part / "__init__.py").is_file():
            break
        folder = folder / part
    return folder


@functools.lru_cache(maxsize=None)
def _distribution(top: str) -> tuple[str, str]:
    from importlib import metadata

    names = _module_distributions().get(top) or [top]
    name = names[0]
    try:
        return name, metadata.version(name)
    except metadata.PackageNotFoundError:
        return name, "version unknown"


@functools.lru_cache(maxsize=1)
def _module_distributions() -> dict[str, list[str]]:
    from importlib import metadata

    return metadata.packages_distributions()


def tree_hash(path: Path) -> str:
    """The Python sources of a folder, each keyed by its path inside the folder."""
    files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return digest(*[f"{f.relative_to(path) if path.is_dir() else f.name}:{file_hash(f)}" for f in files])


# --------------------------------------------------------------------- the fingerprints

class Fingerprints:
    """Each node's definition hash, metadata hash and fingerprint, once per build.

    `parent` maps a parent's unique_id to the fingerprint of the relation this build reads
    for it, or None when the parent is inlined (ephemeral) or not yet known, in which case
    the parent's own fingerprint is computed from its definition."""

    def __init__(self, project: Project, renderer):
        self.project = project
        self.renderer = renderer
        self.code = CodeClosure(project)
        self._definition: dict[str, str] = {}
        self._fingerprint: dict[str, str] = {}
        self.detail: dict[str, dict[str, Any]] = {}

    def definition(self, node: Node) -> str:
        """What the node itself is, without its inputs."""
        uid = node.unique_id
        if uid not in self._definition:
            # whether a seed may be absent (+optional) does not change what a present file loads,
            # and an absent file changes the seed's data fingerprint anyway
            config = {k: v for k, v in node.config.items() if k not in METADATA_KEYS and k != "optional"}
            shape = sorted([c.name, c.data_type, c.not_null] for c in node.columns.values())
            self._definition[uid] = digest(ENGINE, node.kind, node.language, config, shape, self._code(node))
        return self._definition[uid]

    @staticmethod
    def metadata(node: Node) -> str:
        """What a reader is told about the node: tags, docs, descriptions and the like."""
        config = {k: v for k, v in node.config.items() if k in METADATA_KEYS}
        return digest(config, node.description, sorted([c.name, c.description] for c in node.columns.values()))

    def _code(self, node: Node) -> Any:
        if node.kind == "seed":
            return [node.path, node.raw_code]
        if node.kind == "test" and node.test and node.test.get("type") != "singular":
            from duckrec.render.test_sql import generic_sql

            return generic_sql(self.project, node)
        if node.language == "python":
            read = python_vars_read(node.raw_code)
            variables = self.project.vars if read is None else {k: self.project.vars.get(k) for k in read}
            return [node.raw_code, variables, self.code.of_code(node.raw_code)]
        # an incremental model: both renderings, so the vars and refs of its is_incremental()
        # branch count (a ref the parser could not see fails here, and the model then runs
        # and fails with the engine's message instead of being reused)
        branches = (False, True) if node.materialized == "incremental" else (False,)
        return [node.raw_code] + [self.renderer.compile(node, b) for b in branches]

    def data(self, node: Node) -> Any:
        """Data fingerprint of a seed: its files' names, sizes and contents."""
        from duckrec.parser.files import seed_paths

        stamps = []
        for f in seed_paths(self.project, node):
            name = str(f.relative_to(self.project.root)) if f.is_relative_to(self.project.root) else str(f)
            stamps.append([name, f.stat().st_size, file_hash(f)])
        self.detail[node.unique_id] = {"files": stamps}
        return stamps

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

    def fingerprint(self, node: Node, parent, sources: dict | None = None) -> str:
        uid = node.unique_id
        if uid in self._fingerprint:
            return self._fingerprint[uid]
        parents = []
        for d in sorted(node.depends_on):
            known = parent(d)
            if known is None and d in self.project.nodes:
                known = self.fingerprint(self.project.nodes[d], parent, sources)
            if known is not None:
                parents.append([d, known])
        src = [[list(s), (sources or {}).get(s)] for s in node.sources]
        fp = digest(self.definition(node), parents, src, self.data(node) if node.kind == "seed" else None)
        self._fingerprint[uid] = fp
        return fp
