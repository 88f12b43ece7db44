"""`duckrec ls`: the selected nodes, in build order."""
from __future__ import annotations

import sys



def ls(project, options, args) -> int:
    import json

    from duckrec import graph

    graph.link(project)
    kinds = tuple(args.resource_type or ("seed", "model", "test"))
    from duckrec.state.selection import modified_since_last_build
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
