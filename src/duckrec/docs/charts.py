"""Charts as inline SVG, drawn by matplotlib on the server side.

matplotlib is mature and well kept, draws axes, ticks, units and legends by itself, and
writes SVG text that is embedded in the page: the browser downloads nothing and runs no
charting script, so a page opened from file:// with no network shows every chart.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import Any

KINDS = ("bar", "barh", "line", "scatter")
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf"]


@dataclass
class ChartSpec:
    """What to draw from a query's rows. ``y`` may name several columns (one series each);
    ``series`` splits rows into series by a column's value instead."""

    title: str
    kind: str
    x: str
    y: list[str]
    series: str | None = None
    label: str | None = None          # scatter: a column whose value annotates each point
    x_label: str = ""
    y_label: str = ""
    y_format: str | None = None       # "percent" shows 0.15 as 15%
    x_format: str | None = None
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "svg.fonttype": "none",       # text stays text: small, selectable, the page's font
        "svg.hashsalt": "duckrec",    # stable ids: the same data gives the same file
        "font.size": 10, "axes.spines.top": False, "axes.spines.right": False,
        "axes.grid": True, "grid.alpha": 0.3, "figure.dpi": 96,
    })
    return plt


def render(spec: ChartSpec, columns: list[str], rows: list[tuple]) -> str:
    """The chart as an <svg> element string. Raises ValueError naming a missing column."""
    index = {c: i for i, c in enumerate(columns)}
    for col in [spec.x, *spec.y, spec.series, spec.label]:
        if col and col not in index:
            raise ValueError(f"chart {spec.title!r}: column {col!r} is not in the query's result {columns}")
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    fig, ax = plt.subplots(figsize=(7.2, 4.0))
    try:
        groups = _series(spec, index, rows)
        if spec.kind in ("bar", "barh"):
            _bars(ax, spec, groups)
        else:
            for i, (name, xs, ys, labels) in enumerate(groups):
                color = PALETTE[i % len(PALETTE)]
                if spec.kind == "line":
                    ax.plot(xs, ys, marker="o", markersize=3.5, linewidth=1.6, label=name, color=color)
                else:
                    ax.scatter(xs, ys, s=36, label=name, color=color, zorder=3)
                for x, y, text in zip(xs, ys, labels):
                    if text is not None and y is not None:
                        ax.annotate(str(text), (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
        ax.set_title(spec.title, fontsize=11, loc="left")
        value_axis, category_axis = (ax.xaxis, ax.yaxis) if spec.kind == "barh" else (ax.yaxis, ax.xaxis)
        x_label, y_label = (spec.y_label, spec.x_label) if spec.kind == "barh" else (spec.x_label, spec.y_label)
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        if spec.y_format == "percent":
            value_axis.set_major_formatter(PercentFormatter(1.0))
        elif all(isinstance(v, int) for _, _, ys, _ in groups for v in ys if v is not None):
            value_axis.set_major_locator(MaxNLocator(integer=True))  # counts: no 0.25 ticks
        if spec.x_format == "percent" and spec.kind in ("line", "scatter"):
            category_axis.set_major_formatter(PercentFormatter(1.0))
        if len(groups) > 1 or (spec.kind in ("bar", "barh") and len(spec.y) > 1):
            ax.legend(fontsize=8, frameon=False, loc="best")
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    finally:
        plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    return re.sub(r"<svg ", f'<svg class="chart" role="img" aria-label="{_attr(spec.title)}" ', text, count=1)


def _attr(text: str) -> str:
    from html import escape

    return escape(text, quote=True)


def _series(spec: ChartSpec, index: dict[str, int], rows: list[tuple]) -> list[tuple[str, list, list, list]]:
    """[(series name, xs, ys, point labels)]; one per y column, or one per value of `series`."""
    out: dict[str, tuple[list, list, list]] = {}
    for row in rows:
        for y in spec.y:
            name = str(row[index[spec.series]]) if spec.series else y
            xs, ys, labels = out.setdefault(name, ([], [], []))
            xs.append(row[index[spec.x]])
            ys.append(row[index[y]])
            labels.append(row[index[spec.label]] if spec.label else None)
    return [(name, *values) for name, values in out.items()]


def _bars(ax, spec: ChartSpec, groups: list[tuple[str, list, list, list]]) -> None:
    categories: list = []
    for _, xs, _, _ in groups:
        for x in xs:
            if x not in categories:
                categories.append(x)
    width = 0.8 / max(len(groups), 1)
    for i, (name, xs, ys, _) in enumerate(groups):
        values = dict(zip(xs, ys))
        pos = [c + (i - (len(groups) - 1) / 2) * width for c in range(len(categories))]
        heights = [values.get(c) or 0 for c in categories]
        draw = ax.barh if spec.kind == "barh" else ax.bar
        draw(pos, heights, width * 0.95, label=name, color=PALETTE[i % len(PALETTE)])
    ticks = range(len(categories))
    names = [str(c) for c in categories]
    if spec.kind == "barh":
        ax.set_yticks(list(ticks), names)
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
    else:
        ax.set_xticks(list(ticks), names, rotation=30 if max(map(len, names), default=0) > 8 else 0,
                      ha="right" if max(map(len, names), default=0) > 8 else "center")
        ax.grid(axis="x", visible=False)
