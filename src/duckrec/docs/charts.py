"""Charts as inline SVG, drawn by matplotlib on the server side.

matplotlib is mature and well kept, draws axes, ticks, units and legends by itself, and
writes SVG text that is embedded in the page: the browser downloads nothing and runs no
charting script, so a page opened from file:// with no network shows every chart.
"""
from __future__ import annotations

import io
import re
import textwrap
from dataclasses import dataclass, field
from typing import Any

from duckrec.docs.labels import place_labels

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
    join: str = "x"                   # line: join the points in x order, or "rows": in the query's order
    intervals: dict[str, str] = field(default_factory=dict)  # scatter, line: x_low/x_high, y_low/y_high columns
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
    for col in [spec.x, *spec.y, spec.series, spec.label, *spec.intervals.values()]:
        if col and col not in index:
            raise ValueError(f"chart {spec.title!r}: column {col!r} is not in the query's result {columns}")
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    # constrained layout makes room for wrapped axis labels and the legend outside the axes
    fig, ax = plt.subplots(figsize=(7.2, 4.0), layout="constrained")
    try:
        groups = _series(spec, index, rows)
        labelled: list[tuple[Any, Any, str, str]] = []
        if spec.kind in ("bar", "barh"):
            _bars(ax, spec, groups)
        else:
            for i, (name, xs, ys, labels) in enumerate(groups):
                color = PALETTE[i % len(PALETTE)]
                if spec.kind == "line":
                    ax.plot(xs, ys, marker="o", markersize=3.5, linewidth=1.6, label=name, color=color,
                            gid=f"series-{i}")  # an id in the SVG: the browser test reads the line's points
                else:
                    ax.scatter(xs, ys, s=36, label=name, color=color, zorder=3)
            if spec.intervals:
                _interval_bars(ax, spec, index, rows, {name: PALETTE[i % len(PALETTE)]
                                                       for i, (name, *_) in enumerate(groups)})
            for i, (name, xs, ys, labels) in enumerate(groups):
                color = PALETTE[i % len(PALETTE)]
                labelled += [(x, y, str(t), color) for x, y, t in zip(xs, ys, labels) if t is not None and y is not None]
            if labelled:
                ax.margins(x=0.12, y=0.12)  # room for the labels of the outermost points
        ax.set_title(spec.title, fontsize=11, loc="left")
        value_axis, category_axis = (ax.xaxis, ax.yaxis) if spec.kind == "barh" else (ax.yaxis, ax.xaxis)
        x_label, y_label = (spec.y_label, spec.x_label) if spec.kind == "barh" else (spec.x_label, spec.y_label)
        ax.set_xlabel(_wrap(x_label, 80))
        ax.set_ylabel(_wrap(y_label, 42))   # a long label would run past the axes' height and be cut
        if spec.y_format == "percent":
            value_axis.set_major_formatter(PercentFormatter(1.0))
        elif all(isinstance(v, int) for _, _, ys, _ in groups for v in ys if v is not None):
            value_axis.set_major_locator(MaxNLocator(integer=True))  # counts: no 0.25 ticks
        if spec.x_format == "percent" and spec.kind in ("line", "scatter"):
            category_axis.set_major_formatter(PercentFormatter(1.0))
        if len(groups) > 1 or (spec.kind in ("bar", "barh") and len(spec.y) > 1):
            # outside the axes: a legend inside sits on lines or bars whatever loc="best" finds
            fig.legend(*ax.get_legend_handles_labels(), loc="outside right upper", fontsize=8, frameon=False)
        fig.canvas.draw()                  # the final layout: the axes no longer move
        if labelled:
            place_labels(ax, labelled)
        fig.set_layout_engine("none")      # keep the positions the labels were placed against
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    finally:
        plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    return re.sub(r"<svg ", f'<svg class="chart" role="img" aria-label="{_attr(spec.title)}" ', text, count=1)


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width)) if len(text) > width else text


def _attr(text: str) -> str:
    from html import escape

    return escape(text, quote=True)


def _interval_bars(ax, spec: ChartSpec, index: dict[str, int], rows: list[tuple], colors: dict[str, str]) -> None:
    """Each point's interval as thin error bars in its series' colour (an end that is NULL
    draws no bar on that axis)."""
    def spans(centre, low, high):
        if None in (centre, low, high):
            return None
        centre, low, high = float(centre), float(low), float(high)
        return [[max(centre - low, 0.0)], [max(high - centre, 0.0)]]

    y = spec.y[0]
    for row in rows:
        name = str(row[index[spec.series]]) if spec.series else y
        x_value, y_value = row[index[spec.x]], row[index[y]]
        if x_value is None or y_value is None:
            continue
        xerr = spans(x_value, *(row[index[spec.intervals[k]]] for k in ("x_low", "x_high"))) \
            if "x_low" in spec.intervals else None
        yerr = spans(y_value, *(row[index[spec.intervals[k]]] for k in ("y_low", "y_high"))) \
            if "y_low" in spec.intervals else None
        if xerr or yerr:
            ax.errorbar([float(x_value)], [float(y_value)], xerr=xerr, yerr=yerr, fmt="none", ecolor=colors.get(name, PALETTE[0]),
                        elinewidth=1.0, alpha=0.6, capsize=2, zorder=2, gid=f"interval-{name}")


def _series(spec: ChartSpec, index: dict[str, int], rows: list[tuple]) -> list[tuple[str, list, list, list]]:
    """[(series name, xs, ys, point labels)]; one per y column, or one per value of `series`.

    Series named by numbers ("K = 5", "K = 10", "K = 20") come in numeric order, not text
    order; a line's points are joined in the order of x, so a query's row order cannot
    make a line zig-zag back and forth."""
    out: dict[str, tuple[list, list, list]] = {}
    for row in rows:
        for y in spec.y:
            name = str(row[index[spec.series]]) if spec.series else y
            xs, ys, labels = out.setdefault(name, ([], [], []))
            xs.append(row[index[spec.x]])
            ys.append(row[index[y]])
            labels.append(row[index[spec.label]] if spec.label else None)
    groups = [(name, *values) for name, values in out.items()]
    if spec.series:
        groups = numeric_order(groups, key=lambda g: g[0])
    if spec.kind == "line" and spec.join == "x":
        groups = [(name, *_sorted_by_x(xs, ys, labels)) for name, xs, ys, labels in groups]
    return groups


def _sorted_by_x(xs: list, ys: list, labels: list) -> tuple[list, list, list]:
    """The points in increasing x (ties keep the query's order); x values that cannot be
    compared (mixed types, NULLs) keep the query's order."""
    try:
        order = sorted(range(len(xs)), key=lambda i: xs[i])
    except TypeError:
        return xs, ys, labels
    return [xs[i] for i in order], [ys[i] for i in order], [labels[i] for i in order]


# a minus sign counts only where it cannot be a separator ("2024-01-05" is 2024, 1, 5)
_NUMBER = re.compile(r"(?<![\w.-])-?\d+(?:\.\d+)?|\d+(?:\.\d+)?")


def numeric_order(items: list, key) -> list:
    """`items` sorted by the numbers in their names when the names are numbers, or differ
    only in numbers ("K = 5", "K = 10"); otherwise as they are (the query's order)."""
    names = [key(item) for item in items]
    if all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in names):
        return sorted(items, key=key)
    texts = [str(n) for n in names]
    templates = {_NUMBER.sub("#", t) for t in texts}
    if len(templates) != 1 or "#" not in next(iter(templates)):
        return items
    return sorted(items, key=lambda item: [float(v) for v in _NUMBER.findall(str(key(item)))])


def _bars(ax, spec: ChartSpec, groups: list[tuple[str, list, list, list]]) -> None:
    categories: list = []
    for _, xs, _, _ in groups:
        for x in xs:
            if x not in categories:
                categories.append(x)
    categories = numeric_order(categories, key=lambda c: c)  # epochs 1, 2, 10; not "1", "10", "2"
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
