"""`duckrec parse`: read the project, link its graph, write target/manifest.json."""
from __future__ import annotations

from collections.abc import Callable

from duckrec.core.nodes import Project


def parse(project: Project, target: str, out: Callable[[str], None]) -> int:
    from duckrec.artifacts import target as artifacts
    from duckrec import graph

    graph.link(project)
    artifacts.write_manifest(project, target)
    kinds = [n.kind for n in project.nodes.values()]
    out(f"parsed {kinds.count('model')} models, {kinds.count('seed')} seeds, {kinds.count('test')} tests, "
        f"{len(project.sources)} sources, {len(project.doc_blocks)} docs blocks from {project.config_file}; "
        f"wrote {project.paths['target']}/manifest.json")
    return 0
