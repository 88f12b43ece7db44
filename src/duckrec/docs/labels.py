"""Point labels that do not cover each other or the points: a small greedy placement.

Each label tries a ring of positions around its point (right-above first, as a reader
expects), then rings further out with a thin leader line, and takes the first whose box,
measured by matplotlib's own text renderer, overlaps no label placed before it, no point
marker and nothing outside the axes. Written here rather than taken from adjustText:
it is deterministic (the same data gives the same SVG, which the site relies on for
stable files), it needs no new dependency, and it guarantees no overlap whenever one of
the candidate positions is free, which the browser test checks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# (dx, dy) in points and the text's alignment, in order of preference
_RING = [((5, 4), "left", "bottom"), ((5, -4), "left", "top"), ((-5, 4), "right", "bottom"),
         ((-5, -4), "right", "top"), ((0, 7), "center", "bottom"), ((0, -7), "center", "top"),
         ((7, 0), "left", "center"), ((-7, 0), "right", "center")]
_RINGS = (1.0, 2.5, 4.0, 5.5, 7.5, 10.0, 13.0)  # distances, as multiples of the first ring


def _far_ring() -> list[tuple[tuple[float, float], str, str]]:
    """Positions further out (with a leader line): 16 directions, right-above first."""
    def align(c: float, pos: str, neg: str) -> str:
        return pos if c > 0.3 else neg if c < -0.3 else "center"

    angles = (30, 60, 0, 90, 330, 300, 150, 120, 180, 210, 240, 270, 15, 165, 195, 345)
    return [((7 * math.cos(math.radians(d)), 7 * math.sin(math.radians(d))),
             align(math.cos(math.radians(d)), "left", "right"), align(math.sin(math.radians(d)), "bottom", "top"))
            for d in angles]


_FAR = _far_ring()
_PAD_PX = 2.0                       # gap kept between boxes: browsers' text metrics differ slightly
_MARKER_PX = 4.0                    # half the size of a point's marker (a scatter's is 6 pt across)


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float

    def overlap(self, other: "Box") -> float:
        w = min(self.x1, other.x1) - max(self.x0, other.x0)
        h = min(self.y1, other.y1) - max(self.y0, other.y0)
        return w * h if w > 0 and h > 0 else 0.0

    def inside(self, other: "Box") -> bool:
        return self.x0 >= other.x0 and self.y0 >= other.y0 and self.x1 <= other.x1 and self.y1 <= other.y1


def _box(extent: Any, pad: float = 0.0) -> Box:
    return Box(extent.x0 - pad, extent.y0 - pad, extent.x1 + pad, extent.y1 + pad)


def place_labels(ax: Any, points: list[tuple[float, float, str, str]], gid_prefix: str = "point-label") -> int:
    """Annotate each (x, y, text, colour) point without overlaps; returns how many labels
    could only be placed overlapping something (0 when every label found a free place)."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    area = _box(ax.get_window_extent(renderer))
    markers = [_marker_box(ax, x, y) for x, y, _, _ in points]
    placed: list[Box] = []
    crowded = 0
    for i, (x, y, text, color) in enumerate(points):
        best: tuple[float, Any, Box] | None = None
        for scale in _RINGS:
            for (dx, dy), ha, va in (_RING if scale == 1.0 else _FAR):
                ann = _annotate(ax, x, y, text, color, (dx * scale, dy * scale), ha, va, leader=scale > 1)
                tight = _text_box(ann, renderer)
                box = Box(tight.x0 - _PAD_PX, tight.y0 - _PAD_PX, tight.x1 + _PAD_PX, tight.y1 + _PAD_PX)
                cost = sum(box.overlap(b) for b in placed) + sum(tight.overlap(m) for m in markers)
                if not box.inside(area):
                    cost += 1e6
                if best is None or cost < best[0]:
                    if best is not None:
                        best[1].remove()
                    best = (cost, ann, box)
                else:
                    ann.remove()
                if cost == 0:
                    break
            if best is not None and best[0] == 0:
                break
        assert best is not None
        best[1].set_gid(f"{gid_prefix}-{i}")
        placed.append(best[2])
        crowded += best[0] > 0
    return crowded


def _annotate(ax: Any, x: float, y: float, text: str, color: str, offset: tuple[float, float], ha: str, va: str,
              leader: bool) -> Any:
    arrow = {"arrowstyle": "-", "color": color, "lw": 0.6, "alpha": 0.7, "shrinkA": 0, "shrinkB": 3} if leader else None
    # the series colour says which curve a label belongs to where curves cross
    return ax.annotate(text, (x, y), textcoords="offset points", xytext=offset, fontsize=8, ha=ha, va=va,
                       color=color, arrowprops=arrow, annotation_clip=False)


def _text_box(ann: Any, renderer: Any) -> Box:
    """The annotation's text alone: Annotation.get_window_extent also counts the leader line,
    which always reaches the point and would make every far position look crowded."""
    from matplotlib.text import Text

    ann.update_positions(renderer)
    return _box(Text.get_window_extent(ann, renderer))


def _marker_box(ax: Any, x: float, y: float) -> Box:
    px, py = ax.transData.transform((x, y))
    return Box(px - _MARKER_PX, py - _MARKER_PX, px + _MARKER_PX, py + _MARKER_PX)
