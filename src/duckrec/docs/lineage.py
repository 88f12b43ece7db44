"""The lineage graph: a layered layout (Sugiyama-style) of seeds, models and tests, drawn
as inline SVG. Columns are DAG layers (a node sits one layer right of its deepest parent;
tests sit in a narrow column right after the layer they test), rows are ordered by the
barycentre of their neighbours to keep edges short. No JavaScript library: the page's own
small script handles selection, so the site works from file:// with no network.
"""
from __future__ import annotations

from dataclasses import dataclass
from html import escape

from duckrec.core.nodes import Node

MODEL_W, MODEL_H, TEST_W, TEST_H = 200, 26, 170, 14
COL_GAP, ROW_GAP, TEST_GAP, MARGIN = 60, 10, 3, 20


@dataclass
class Box:
    uid: str
    layer: int
    x: float = 0.0
    y: float = 0.0
    w: float = MODEL_W
    h: float = MODEL_H


def layers(nodes: dict[str, Node]) -> dict[str, int]:
    """Seeds and models on even layers (twice their longest path from a root); each test on
    the odd layer right after the deepest node it reads."""
    memo: dict[str, int] = {}

    def depth(uid: str, trail: frozenset[str] = frozenset()) -> int:
        if uid not in memo:
            parents = [p for p in nodes[uid].depends_on if p in nodes and nodes[p].kind != "test"]
            # a cycle is the engine's error to report; here it only must not loop
            memo[uid] = max((depth(p, trail | {uid}) + 1 for p in parents if p not in trail), default=0)
        return memo[uid]

    out = {}
    for uid, node in nodes.items():
        if node.kind == "test":
            out[uid] = 2 * max((depth(p) for p in node.depends_on if p in nodes), default=0) + 1
        else:
            out[uid] = 2 * depth(uid)
    return out


def layout(nodes: dict[str, Node]) -> tuple[dict[str, Box], list[tuple[str, str]], float, float]:
    """Boxes per node, edges (parent, child), and the drawing's width and height."""
    layer_of = layers(nodes)
    edges = [(p, uid) for uid, n in nodes.items() for p in n.depends_on if p in nodes]
    parents: dict[str, list[str]] = {u: [] for u in nodes}
    children: dict[str, list[str]] = {u: [] for u in nodes}
    for p, c in edges:
        parents[c].append(p)
        children[p].append(c)
    columns: dict[int, list[str]] = {}
    for uid in sorted(nodes, key=lambda u: (nodes[u].kind != "seed", nodes[u].path, u)):
        columns.setdefault(layer_of[uid], []).append(uid)
    order = sorted(columns)
    position = {u: float(i) for col in columns.values() for i, u in enumerate(col)}

    def sweep(cols: list[int], neighbours: dict[str, list[str]]) -> None:
        for layer in cols:
            col = columns[layer]
            def key(u: str) -> tuple[float, float]:
                near = [position[v] for v in neighbours[u]]
                return (sum(near) / len(near) if near else position[u], position[u])
            col.sort(key=key)
            for i, u in enumerate(col):
                position[u] = float(i)

    for _ in range(4):  # a few down and up sweeps settle the order
        sweep(order[1:], parents)
        sweep(list(reversed(order[:-1])), children)
    boxes: dict[str, Box] = {}
    x = MARGIN
    height = 0.0
    for layer in order:
        is_test = layer % 2 == 1
        w, h = (TEST_W, TEST_H) if is_test else (MODEL_W, MODEL_H)
        y = MARGIN
        for uid in columns[layer]:
            boxes[uid] = Box(uid, layer, x, y, w, h)
            y += h + (TEST_GAP if is_test else ROW_GAP)
        height = max(height, y)
        x += w + COL_GAP
    return boxes, edges, x - COL_GAP + MARGIN, height + MARGIN


def _label(node: Node, width: float) -> str:
    text = node.name if node.kind == "test" else (
        f"{node.schema}.{node.name}" if node.kind == "model" else f"{node.schema}.{node.name}")
    limit = int(width / 6.6)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def svg(nodes: dict[str, Node], links: dict[str, str]) -> str:
    """The lineage as one <svg>: a <g class="node"> per node (data-id = unique_id), a <path
    class="edge"> per dependency (data-from, data-to)."""
    boxes, edges, width, height = layout(nodes)
    out = [f'<svg id="lineage" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="lineage of {len(nodes)} nodes">',
           '<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="6" markerHeight="6" '
           'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#9aa5b1"/></marker></defs>', '<g class="edges">']
    for p, c in edges:
        a, b = boxes[p], boxes[c]
        x1, y1, x2, y2 = a.x + a.w, a.y + a.h / 2, b.x, b.y + b.h / 2
        mid = (x1 + x2) / 2
        out.append(f'<path class="edge" data-from="{escape(p)}" data-to="{escape(c)}" '
                   f'd="M{x1:.1f},{y1:.1f} C{mid:.1f},{y1:.1f} {mid:.1f},{y2:.1f} {x2:.1f},{y2:.1f}" '
                   'marker-end="url(#arrow)"/>')
    out.append('</g><g class="nodes">')
    for uid, box in boxes.items():
        node = nodes[uid]
        kind = node.kind if node.kind != "model" else f"model {node.language}"
        out.append(
            f'<g class="node {escape(kind)}" data-id="{escape(uid)}" data-href="{escape(links.get(uid, ""))}" '
            f'data-schema="{escape(node.schema if node.kind != "test" else "")}" '
            f'transform="translate({box.x:.1f},{box.y:.1f})" tabindex="0">'
            f'<title>{escape(uid)}</title>'
            f'<rect width="{box.w}" height="{box.h}" rx="4"/>'
            f'<text x="8" y="{box.h / 2 + 4:.1f}">{escape(_label(node, box.w))}</text></g>')
    out.append("</g></svg>")
    return "\n".join(out)
