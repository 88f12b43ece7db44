"""The DAG: link refs to nodes, order them, find cycles, and select subsets."""
from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Iterable
from graphlib import CycleError, TopologicalSorter

from duckrec.core.errors import ProjectError, did_you_mean
from duckrec.core.nodes import Node, Project


def link(project: Project) -> None:
    """Resolve every node's refs and sources into depends_on unique_ids."""
    seed_relations = {n.relation: n.unique_id for n in project.nodes.values() if n.kind == "seed"}
    names = [n.name for n in project.nodes.values() if n.kind in ("model", "seed")]
    for node in project.nodes.values():
        deps: list[str] = []
        for ref in node.refs:
            target = project.by_name(ref)
            if target is None:
                where = f"{node.kind} {node.name}" if node.kind != "test" else f"test {node.name}"
                raise ProjectError(f"{where} refers to ref({ref!r}), which is not a model or seed." + did_you_mean(ref, names),
                                   path=node.path)
            deps.append(target.unique_id)
        for src in node.sources:
            source = project.sources.get(src)
            if source is None:
                known = [f"{a}.{b}" for a, b in project.sources]
                raise ProjectError(
                    f"{node.name} refers to source{src!r}, which is not declared in {project.paths['models']}/*.yml."
                    + did_you_mean(f"{src[0]}.{src[1]}", known), path=node.path)
            # A source that is a seed of this project is built first, like a ref.
            if source.relation in seed_relations:
                deps.append(seed_relations[source.relation])
        node.depends_on = list(dict.fromkeys(deps))
    order(project.nodes)  # raises on a cycle


def order(nodes: dict[str, Node]) -> list[str]:
    """Topological order, stable by path; a ready test runs first, so tests follow their model."""
    rank = {"seed": 0, "model": 1, "test": 2}
    keys = sorted(nodes, key=lambda u: (rank[nodes[u].kind], nodes[u].path, u))
    position = {u: (nodes[u].kind != "test", i) for i, u in enumerate(keys)}
    sorter = TopologicalSorter({u: [d for d in nodes[u].depends_on if d in nodes] for u in keys})
    try:
        sorter.prepare()
    except CycleError as e:
        cycle = e.args[1][:-1]  # each node a dependency of the next, the first repeated at the end
        first = min(range(len(cycle)), key=lambda i: position[cycle[i]][1])
        cycle = cycle[first:] + cycle[:first + 1]
        pretty = " -> ".join(nodes[u].name for u in cycle)
        raise ProjectError(f"dependency cycle: {pretty}", path=nodes[cycle[0]].path) from None
    ready = [(position[u], u) for u in sorter.get_ready()]
    heapq.heapify(ready)
    out: list[str] = []
    while ready:
        _, u = heapq.heappop(ready)
        out.append(u)
        sorter.done(u)
        for c in sorter.get_ready():
            heapq.heappush(ready, (position[c], c))
    return out


def children_map(nodes: dict[str, Node]) -> dict[str, list[str]]:
    children: dict[str, list[str]] = {u: [] for u in nodes}
    for u, n in nodes.items():
        for d in n.depends_on:
            if d in children:
                children[d].append(u)
    return children


def descendants(start: Iterable[str], children: dict[str, list[str]]) -> set[str]:
    return _walk(start, children)


def _walk(start: Iterable[str], edges: dict[str, list[str]], depth: int | None = None) -> set[str]:
    """Everything reachable from `start` along `edges` (within `depth` steps when given)."""
    seen: set[str] = set()
    frontier = list(start)
    step = 0
    while frontier and (depth is None or step < depth):
        step += 1
        nxt = []
        for u in frontier:
            for v in edges.get(u, ()):
                if v not in seen:
                    seen.add(v)
                    nxt.append(v)
        frontier = nxt
    return seen


METHODS = ("fqn", "tag", "path", "file", "config.<key>", "resource_type", "test_type", "test_name", "source",
           "result", "package", "state")
_ATOM_RE = re.compile(r"^(?P<at>@)?(?:(?P<up>\d*)\+)?(?P<body>[^+@]+?)(?:\+(?P<down>\d*))?$")


class NoMatch(ProjectError):
    """A selector that matches no node."""


def select(project: Project, select_terms: list[str] | None, exclude_terms: list[str] | None,
           kinds: tuple[str, ...] = ("seed", "model", "test"), warnings: list[str] | None = None,
           state_modified: Callable[[], set[str]] | None = None) -> set[str]:
    """dbt's node selection.

    Terms separated by spaces (or given as several arguments) are a union; a comma inside a
    term is an intersection (`tag:recs,tag:eval`). A term is `[@][N+]method:value[+N]`:
    `+name`/`name+` add all ancestors/descendants, `2+name`/`name+1` only that many
    generations, `@name` the descendants and every ancestor of those. Without a method, a
    value with a `/` or a file suffix is a path, anything else a name or folder (dbt's fqn).
    Tests come with any selected node they test (dbt's eager indirect selection); a test of
    an excluded node is excluded with it. With `warnings`, a selector that matches nothing is a
    warning there (dbt's rule) instead of an error. `state:modified` asks `state_modified()`
    for the nodes new or changed since the last build.
    """
    nodes = project.nodes
    sel = _Selector(project, warnings, state_modified)
    if select_terms:
        chosen: set[str] = set()
        for term in _split(select_terms):
            chosen |= sel.term(term)
        for u, n in nodes.items():
            if n.kind == "test" and any(d in chosen for d in n.depends_on):
                chosen.add(u)
    else:
        chosen = set(nodes)
    excluded: set[str] = set()
    for term in _split(exclude_terms or []):
        excluded |= sel.term(term)
    chosen -= excluded
    # a test of an excluded node goes with it (it would read a table this run does not build)
    chosen = {u for u in chosen if not (nodes[u].kind == "test" and excluded & set(nodes[u].depends_on))}
    return {u for u in chosen if nodes[u].kind in kinds}


def _split(terms: list[str]) -> list[str]:
    return [x for t in terms for x in t.split() if x]


class _Selector:
    def __init__(self, project: Project, warnings: list[str] | None = None,
                 state_modified: Callable[[], set[str]] | None = None):
        self.project = project
        self.warnings = warnings
        self._state_modified = state_modified
        self._modified: set[str] | None = None
        self.nodes = project.nodes
        self.parents = {u: [d for d in n.depends_on if d in self.nodes] for u, n in self.nodes.items()}
        self.children = children_map(self.nodes)
        self._results: dict[str, str] | None = None

    def term(self, term: str) -> set[str]:
        out: set[str] | None = None
        for atom in term.split(","):
            if not atom:
                raise ProjectError(f"--select {term}: an empty selector around ','")
            try:
                found = self.atom(atom, term)
            except NoMatch as e:
                if self.warnings is None:
                    raise
                self.warnings.append(str(e) + " It matches nothing.")
                found = set()
            out = found if out is None else out & found
        return out or set()

    def atom(self, atom: str, term: str) -> set[str]:
        m = _ATOM_RE.match(atom)
        if not m:
            raise ProjectError(f"--select {term}: cannot read {atom!r}; expected [@][N+]method:value[+N], "
                               "e.g. +orders, orders+2, @orders, tag:nightly")
        base = self.base(m.group("body"), term)
        out = set(base)
        if m.group("at"):
            down = base | _walk(base, self.children)
            return down | _walk(down, self.parents)
        if m.group("up") is not None:
            out |= _walk(base, self.parents, int(m.group("up")) if m.group("up") else None)
        if m.group("down") is not None:
            out |= _walk(base, self.children, int(m.group("down")) if m.group("down") else None)
        return out

    def base(self, body: str, term: str) -> set[str]:
        nodes = self.nodes
        if ":" in body:
            method, value = body.split(":", 1)
        elif "/" in body or body.endswith((".sql", ".py", ".csv")):
            method, value = "path", body
        else:
            method, value = "fqn", body
        key = None
        if method.startswith("config."):
            method, key = "config", method[7:]
        if method == "fqn":
            found = {u for u, n in nodes.items() if _fqn_match(self.project, n, value)}
            if not found:
                raise NoMatch(f"--select {term}: no node named {value!r}."
                              + did_you_mean(value, [n.name for n in nodes.values()]))
            return found
        if method == "tag":
            found = {u for u, n in nodes.items() if value in n.tags}
            if not found:
                tags = {t for n in nodes.values() for t in n.tags}
                raise NoMatch(f"--select {term}: no node has tag {value!r}." + did_you_mean(value, tags))
            return found
        if method in ("path", "file"):
            prefix = value.rstrip("/")
            found = {u for u, n in nodes.items() if n.path == prefix or n.path.startswith(prefix + "/")
                     or (method == "file" and n.path.rsplit("/", 1)[-1] == prefix)}
            if not found:
                raise NoMatch(f"--select {term}: no node lives under path {prefix!r}")
            return found
        if method == "config":
            found = {u for u, n in nodes.items() if key in n.config and _config_match(n.config[key], value)}
            if not found:
                raise NoMatch(f"--select {term}: no node has config {key}={value!r}")
            return found
        if method == "resource_type":
            kinds = {"model": "model", "seed": "seed", "test": "test"}
            if value not in kinds:
                raise ProjectError(f"--select {term}: resource_type is one of {sorted(kinds)}")
            return {u for u, n in nodes.items() if n.kind == value}
        if method in ("test_type", "test_name"):
            tests = {u: n for u, n in nodes.items() if n.kind == "test" and n.test}
            if method == "test_type":
                want = {"generic": lambda t: t != "singular", "singular": lambda t: t == "singular",
                        "data": lambda t: t == "singular", "schema": lambda t: t != "singular"}
                if value not in want:
                    raise ProjectError(f"--select {term}: test_type is generic or singular")
                return {u for u, n in tests.items() if want[value](n.test["type"])}
            return {u for u, n in tests.items() if n.test["type"] == value}
        if method == "source":
            parts = value.split(".")
            keys = {k for k in self.project.sources if list(k[:len(parts)]) == parts}
            if not keys:
                known = [f"{a}.{b}" for a, b in self.project.sources]
                raise NoMatch(f"--select {term}: no source {value!r}." + did_you_mean(value, known))
            # sources are not nodes here: a source selects what reads it (and a seed behind it)
            relations = {self.project.sources[k].relation for k in keys}
            return {u for u, n in nodes.items() if set(n.sources) & keys
                    or (n.kind == "seed" and n.relation in relations)}
        if method == "result":
            results = self._last_results(term)
            return {u for u, status in results.items() if status == value and u in nodes}
        if method == "package":
            return set(nodes) if value == self.project.name else set()
        if method == "state":
            if value != "modified":
                raise ProjectError(f"--select {term}: the state method knows 'state:modified' only")
            if self._state_modified is None:
                raise ProjectError(f"--select {term}: this command has no stored state to compare with")
            if self._modified is None:
                self._modified = self._state_modified()
            return self._modified & set(nodes)
        raise ProjectError(f"--select {term}: unknown selector method {method!r}; the methods are "
                           + ", ".join(METHODS) + did_you_mean(method, [m.split(".")[0] for m in METHODS]))

    def _last_results(self, term: str) -> dict[str, str]:
        if self._results is None:
            from duckrec.artifacts.dbt import read_statuses

            path = self.project.path("target") / "run_results.json"
            try:
                self._results = read_statuses(self.project)
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise ProjectError(f"--select {term}: cannot read {path}: {e}") from None
            if self._results is None:
                raise ProjectError(f"--select {term}: result: reads the last run's {self.project.paths['target']}"
                                   "/run_results.json, and there is none yet")
        return self._results


def _fqn_match(project: Project, node: Node, value: str) -> bool:
    if value in (node.name, node.unique_id):
        return True
    parts = value.split(".")
    fqn = node.fqn if parts[0] != project.name else [project.name] + node.fqn
    return len(parts) < len(fqn) + 1 and fqn[:len(parts)] == parts


def _config_match(actual: object, value: str) -> bool:
    items = actual if isinstance(actual, (list, tuple)) else [actual]
    return any((str(v).lower() if isinstance(v, bool) else str(v)) == value for v in items)
