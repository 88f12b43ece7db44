"""Charts and lineage that read right, measured in headless Chromium: point labels that do not
cover each other, K in numeric order, lines joined in x order, no text cut off at the
chart's edge, the lineage opening fitted to the window, a history without repeated points."""
from __future__ import annotations

import io
import re

import pytest

from docs_fixtures import CHECKS
from duckrec.docs.site import generate
from duckrec.parser.project import load_project
from duckrec.execute.runner import Options, Runner
from duckrec.execute.reporter import Reporter
from engine_fixtures import write_project
from test_docs_site import _browser, CHROMIUM


def _build(root) -> None:
    assert Runner(load_project(root), Options(quiet=True), Reporter(quiet=True, out=io.StringIO())).run() == 0


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = write_project(tmp_path_factory.mktemp("charts") / "checks", CHECKS)
    _build(root)
    events = root / "seeds/events.csv"
    events.write_text(events.read_text() + "4,12,4,0.8\n")  # new data: the history gets a second point
    _build(root)
    _build(root)                                            # nothing new: no third point
    index, problems = generate(load_project(root), out=lambda line: None)
    assert problems == []
    return index.parent


# Each text element's box in the SVG's own units: getBBox, through the element's transform.
TEXT_BOXES = """(svg, selector) => [...svg.querySelectorAll(selector)].map(t => {
  const b = t.getBBox(), m = svg.getScreenCTM().inverse().multiply(t.getScreenCTM());
  const corners = [[b.x, b.y], [b.x + b.width, b.y], [b.x, b.y + b.height], [b.x + b.width, b.y + b.height]]
    .map(([x, y]) => [m.a * x + m.c * y + m.e, m.b * x + m.d * y + m.f]);  // rotated text (a y label) too
  const xs = corners.map(c => c[0]), ys = corners.map(c => c[1]);
  return {text: t.textContent, x0: Math.min(...xs), y0: Math.min(...ys), x1: Math.max(...xs), y1: Math.max(...ys)};
})"""


def _chart(page, title: str):
    return page.locator(f'svg.chart[aria-label="{title}"]').element_handle()


def _line_points(page, chart) -> list[list[tuple[float, float]]]:
    """The vertices of each line series, in drawing order."""
    paths = chart.eval_on_selector_all('g[id^="series-"] > path', "els => els.map(p => p.getAttribute('d'))")
    return [[(float(x), float(y)) for x, y in re.findall(r"[ML] ?(-?[\d.]+) (-?[\d.]+)", d)] for d in paths]


def _overlaps(boxes: list[dict]) -> list[tuple[str, str]]:
    return [(a["text"], b["text"]) for i, a in enumerate(boxes) for b in boxes[i + 1:]
            if a["x0"] < b["x1"] and b["x0"] < a["x1"] and a["y0"] < b["y1"] and b["y0"] < a["y1"]]


def test_charts_read_right_in_the_browser(site):
    with _browser() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto((site / "results/checks.html").as_uri())

        crowded = _chart(page, "Crowded labels")
        labels = crowded.evaluate(TEXT_BOXES, 'g[id^="point-label"] text')
        assert sorted(b["text"] for b in labels) == sorted(["0.0 *", "0.1", "0.2", "0.0", "0.2", "0.4", "lm", "0.5",
                                                            "0.9", "far"])
        assert _overlaps(labels) == []

        hit_rate = _chart(page, "Hit rate per K")
        legend = [b["text"] for b in hit_rate.evaluate(TEXT_BOXES, 'g[id^="legend"] text')]
        assert legend == ["K = 5", "K = 10", "K = 20"]

        (line,) = _line_points(page, _chart(page, "Out of order"))
        assert len(line) == 5 and [x for x, _ in line] == sorted(x for x, _ in line)

        history = _line_points(page, _chart(page, "History"))
        assert len(history) == 1 and len(history[0]) == 2, history    # three builds, two distinct points
        assert all(a != b for a, b in zip(history[0], history[0][1:]))

        # no text runs past the chart's edge (a long y label, a legend outside the axes)
        for title in ("Crowded labels", "Hit rate per K", "Out of order", "History"):
            chart = _chart(page, title)
            width, height = chart.evaluate("s => [s.viewBox.baseVal.width, s.viewBox.baseVal.height]")
            cut = [b["text"] for b in chart.evaluate(TEXT_BOXES, "text")
                   if b["x0"] < -0.5 or b["y0"] < -0.5 or b["x1"] > width + 0.5 or b["y1"] > height + 0.5]
            assert cut == [], (title, cut)
        browser.close()


def test_the_lineage_opens_fitted_to_the_window(site):
    with _browser() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        # a window too small for the drawing at its natural size
        page = browser.new_page(viewport={"width": 520, "height": 420})
        page.goto((site / "index.html").as_uri())
        box = page.eval_on_selector("#graph", "g => { const r = g.getBoundingClientRect(); "
                                              "return [r.left, r.top, r.left + g.clientWidth, r.top + g.clientHeight]; }")
        natural = page.eval_on_selector("#lineage", "s => s.viewBox.baseVal.width")
        assert natural > box[2] - box[0], "the fixture's lineage must not fit at zoom 1 for this test to mean anything"
        nodes = page.eval_on_selector_all("#lineage g.node rect", "els => els.map(e => { const r = e.getBoundingClientRect(); "
                                                                  "return [r.left, r.top, r.right, r.bottom]; })")
        outside = [n for n in nodes if n[0] < box[0] - 1 or n[1] < box[1] - 1 or n[2] > box[2] + 1 or n[3] > box[3] + 1]
        assert nodes and outside == []
        browser.close()


def _path_xs(svg: str) -> list[float]:
    d = re.search(r'<g id="series-0">\s*<path d="([^"]+)"', svg).group(1)
    return [float(x) for x in re.findall(r"[ML] ?(-?[\d.]+) -?[\d.]+", d)]


def test_a_curve_traced_by_a_parameter_keeps_the_querys_order_with_join_rows():
    from duckrec.docs.charts import ChartSpec, render

    rows = [(0.1, 0.30), (0.3, 0.10), (0.2, 0.20)]   # a knob's settings in order; x goes back and forth
    by_x = render(ChartSpec("c", "line", "x", ["y"]), ["x", "y"], rows)
    by_rows = render(ChartSpec("c", "line", "x", ["y"], join="rows"), ["x", "y"], rows)
    assert _path_xs(by_x) == sorted(_path_xs(by_x))
    xs = _path_xs(by_rows)
    assert xs[0] < xs[2] < xs[1]


def test_a_scatter_draws_each_points_interval_in_its_colour():
    from duckrec.docs.charts import PALETTE, ChartSpec, render

    spec = ChartSpec(title="ndcg vs coverage", kind="scatter", x="coverage", y=["ndcg"], series="strategy",
                     intervals={"x_low": "c_lo", "x_high": "c_hi", "y_low": "n_lo", "y_high": "n_hi"})
    columns = ["strategy", "coverage", "ndcg", "c_lo", "c_hi", "n_lo", "n_hi"]
    rows = [("lm", 0.23, 0.083, 0.22, 0.24, 0.072, 0.094), ("markov", 0.17, 0.055, 0.16, 0.18, None, None)]
    svg = render(spec, columns, rows)
    lm = re.search(r'<g id="interval-lm">(.*?)</g>\s*</g>', svg, re.S)
    assert lm and PALETTE[0] in lm.group(1), svg[:2000]
    # markov's NDCG has no interval, its coverage has one: one bar, in markov's colour
    markov = re.search(r'<g id="interval-markov">(.*?)</g>\s*</g>', svg, re.S)
    assert markov and PALETTE[1] in markov.group(1)
    with pytest.raises(ValueError, match="'n_hi' is not in the query's result"):
        render(spec, columns[:-1], [r[:-1] for r in rows])


def test_a_line_chart_draws_each_settings_interval_in_its_curves_colour():
    from duckrec.docs.charts import PALETTE, ChartSpec, render

    spec = ChartSpec(title="tradeoff", kind="line", x="coverage", y=["ndcg"], series="strategy", join="rows",
                     intervals={"y_low": "n_lo", "y_high": "n_hi"})
    columns = ["strategy", "coverage", "ndcg", "n_lo", "n_hi"]
    rows = [("lm_mmr", 0.23, 0.083, 0.072, 0.094), ("lm_mmr", 0.25, 0.080, 0.070, 0.090),
            ("lm_explore", 0.30, 0.078, 0.068, 0.088)]
    svg = render(spec, columns, rows)
    for i, name in enumerate(["lm_mmr", "lm_explore"]):
        bars = re.search(rf'<g id="interval-{name}">(.*?)</g>\s*</g>', svg, re.S)
        assert bars and PALETTE[i] in bars.group(1), name
