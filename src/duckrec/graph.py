"""The DAG: link refs to nodes, order them, find cycles, and select subsets."""
from __future__ import annotations

from collections.abc import Iterable

from .errors import ProjectError, did_you_mean
from .project import Node, Project


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
    indegree = {u: 0 for u in keys}
    children: dict[str, list[str]] = {u: [] for u in keys}
    for u in keys:
        for d in nodes[u].depends_on:
            if d in nodes:
                indegree[u] += 1
                children[d].append(u)
    import heapq

    ready = [(position[u], u) for u in keys if indegree[u] == 0]
    heapq.heapify(ready)
    out: list[str] = []
    while ready:
        _, u = heapq.heappop(ready)
        out.append(u)
        for c in children[u]:
            indegree[c] -= 1
            if indegree[c] == 0:
                heapq.heappush(ready, (position[c], c))
    if len(out) != len(keys):
        cycle = find_cycle(nodes, [u for u in keys if indegree[u] > 0])
        pretty = " -> ".join(nodes[u].name for u in cycle)
        raise ProjectError(f"dependency cycle: {pretty}", path=nodes[cycle[0]].path)
    return out


def find_cycle(nodes: dict[str, Node], candidates: list[str]) -> list[str]:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(u: str) -> list[str] | None:
        state[u] = 1
        stack.append(u)
        for d in nodes[u].depends_on:
            if d not in nodes:
                continue
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        state[u] = 2
        stack.pop()
        return None

    for u in candidates:
        if u not in state:
            found = visit(u)
            if found:
                return list(reversed(found))
    return candidates[:1]


def children_map(nodes: dict[str, Node]) -> dict[str, list[str]]:
    children: dict[str, list[str]] = {u: [] for u in nodes}
    for u, n in nodes.items():
        for d in n.depends_on:
            if d in children:
                children[d].append(u)
    return children


def descendants(start: Iterable[str], children: dict[str, list[str]]) -> set[str]:
    return _walk(start, children)


def _walk(start: Iterable[str], edges: dict[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        u = todo.pop()
        for v in edges.get(u, ()):
            if v not in seen:
                seen.add(v)
                todo.append(v)
    return seen


def select(project: Project, select_terms: list[str] | None, exclude_terms: list[str] | None,
           kinds: tuple[str, ...] = ("seed", "model", "test")) -> set[str]:
    """dbt's selection: names, +name, name+, tag:x, path:x; tests follow the nodes they test."""
    nodes = project.nodes
    parents = {u: [d for d in n.depends_on if d in nodes] for u, n in nodes.items()}
    children = children_map(nodes)
    if select_terms:
        chosen: set[str] = set()
        for term in _split(select_terms):
            chosen |= _match(project, term, parents, children)
        # a test comes with the nodes it tests when all of them are chosen
        for u, n in nodes.items():
            if n.kind == "test" and n.depends_on and all(d in chosen for d in n.depends_on):
                chosen.add(u)
    else:
        chosen = set(nodes)
    excluded: set[str] = set()
    for term in _split(exclude_terms or []):
        excluded |= _match(project, term, parents, children)
    chosen -= excluded
    # a test of an excluded node goes with it (it would read a table this run does not build)
    chosen = {u for u in chosen if not (nodes[u].kind == "test" and excluded & set(nodes[u].depends_on))}
    return {u for u in chosen if nodes[u].kind in kinds}


def _split(terms: list[str]) -> list[str]:
    out: list[str] = []
    for t in terms:
        out.extend(x for x in t.replace(",", " ").split() if x)
    return out


def _match(project: Project, term: str, parents: dict, children: dict) -> set[str]:
    nodes = project.nodes
    up = term.startswith("+")
    down = term.endswith("+")
    core = term.strip("+")
    if core.startswith("tag:"):
        tag = core[4:]
        base = {u for u, n in nodes.items() if tag in n.tags}
        if not base:
            tags = {t for n in nodes.values() for t in n.tags}
            raise ProjectError(f"--select {term}: no node has tag {tag!r}." + did_you_mean(tag, tags))
    elif core.startswith("path:"):
        prefix = core[5:].rstrip("/")
        base = {u for u, n in nodes.items() if n.path == prefix or n.path.startswith(prefix + "/")}
        if not base:
            raise ProjectError(f"--select {term}: no node lives under path {prefix!r}")
    else:
        base = {u for u, n in nodes.items() if n.name == core or n.unique_id == core}
        if not base:
            raise ProjectError(f"--select {term}: no node named {core!r}."
                               + did_you_mean(core, [n.name for n in nodes.values()]))
    out = set(base)
    if up:
        out |= _walk(base, parents)
    if down:
        out |= _walk(base, children)
    return out
