"""The docs site: generated from a tiny built project, then opened in headless Chromium."""
from __future__ import annotations

import io
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from docs_fixtures import TINY
from duckrec.docs.site import generate
from duckrec.core.errors import ProjectError
from duckrec.parser.project import load_project
from duckrec.execute.runner import Options, Runner
from duckrec.execute.reporter import Reporter
from engine_fixtures import run, write_project

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = write_project(tmp_path_factory.mktemp("docs") / "tiny", TINY)
    project = load_project(root)
    assert Runner(project, Options(quiet=True), Reporter(quiet=True, out=io.StringIO())).run() == 0
    index, problems = generate(load_project(root), out=lambda line: None)
    assert problems == []
    return root, index


def manifest(root: Path) -> dict:
    """The manifest with duckrec's ids ("model.name", as the site's pages are named) for dbt's
    ("model.<project>.<name>[.<hash>]"), and depends_on as the list of those."""
    raw = json.loads((root / "target/manifest.json").read_text())
    short = {uid: f"{n['resource_type']}.{n['name']}" for uid, n in raw["nodes"].items()}
    nodes = {short[uid]: {**n, "depends_on": [short[d] for d in n["depends_on"].get("nodes", []) if d in short]}
             for uid, n in raw["nodes"].items()}
    return {**raw, "nodes": nodes}


def test_generate_writes_a_page_per_node_and_the_declared_result_pages(site):
    root, index = site
    docs = index.parent
    nodes = manifest(root)["nodes"]
    assert len(nodes) == 12
    for uid in nodes:
        assert (docs / "nodes" / f"{uid}.html").exists(), uid
    page = (docs / "nodes/model.item_scores.html").read_text()
    assert "One row per item with its users and mean score." in page
    assert "NOT NULL" in page and "unique" in page and "not_null" in page     # column, type, tests
    assert "count(e.user_id)" in page                                      # compiled SQL
    assert re.search(r'class="status success">success</span> · 3 rows', page)  # last run, rows
    result = (docs / "results/overview.html").read_text()
    assert result.count('<svg class="chart"') == 4
    assert "Score over days (K = 2)" in result                             # titles rendered with var()
    assert "shown once the project has a model &#39;history_that_does_not_exist&#39;" in result
    runs = (docs / "runs.html").read_text()
    assert "<code>build</code>" not in runs and ">build<" in runs


def test_the_site_needs_no_network(site):
    _, index = site
    for page in index.parent.rglob("*.html"):
        text = page.read_text()
        assert not re.search(r'(src|href)="(https?:)?//', text), page
        assert "@import" not in text and "url(http" not in text


def test_a_report_page_with_an_unknown_chart_kind_names_file_and_line(tmp_path):
    files = dict(TINY)
    files["reports/bad.yml"] = """
        title: Bad
        charts:
          - title: Pie
            kind: pie
            sql: select 1 as a, 2 as b
            x: a
            y: b
    """
    root = write_project(tmp_path / "p", files)
    with pytest.raises(ProjectError) as e:
        generate(load_project(root), out=lambda line: None)
    assert e.value.path == "reports/bad.yml" and e.value.line == 3
    assert "kind 'pie'" in str(e.value) and "bar" in str(e.value)


def test_a_chart_naming_a_missing_column_is_reported_and_the_rest_is_written(tmp_path, capsys):
    files = dict(TINY)
    files["reports/bad.yml"] = """
        title: Bad
        charts:
          - title: Wrong column
            kind: bar
            sql: select day, events from {{ ref('daily') }}
            x: day
            y: eventz
    """
    root = write_project(tmp_path / "p", files)
    assert run(capsys, root, "build", "-q").code == 0
    result = run(capsys, root, "docs", "generate")
    assert result.code == 1
    assert "reports/bad.yml, line 3: chart 'Wrong column'" in result.out and "'eventz'" in result.out
    assert (root / "target/docs/results/overview.html").exists()


def test_docs_generate_before_any_build_says_so(tmp_path, capsys):
    root = write_project(tmp_path / "p", TINY)
    result = run(capsys, root, "docs", "generate")
    assert result.code == 0, result
    assert "(no warehouse yet)" in result.out
    assert "shown once the warehouse exists" in (root / "target/docs/results/overview.html").read_text()


def _browser():
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    try:
        from playwright import sync_api
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("playwright is not installed: the README's test command installs it ('.[test]')")
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    return sync_api.sync_playwright()


def test_the_site_in_headless_chromium(site):
    root, index = site
    docs = index.parent
    nodes = manifest(root)["nodes"]
    expected_edges = {(p, uid) for uid, n in nodes.items() for p in n["depends_on"]}
    shots = docs / "screenshots"
    shots.mkdir(exist_ok=True)
    problems: list[str] = []
    with _browser() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in (
            "error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
        page.goto(index.as_uri())
        ids = page.eval_on_selector_all("#lineage g.node", "els => els.map(e => e.dataset.id)")
        assert sorted(ids) == sorted(nodes)
        edges = page.eval_on_selector_all("#lineage path.edge", "els => els.map(e => [e.dataset.from, e.dataset.to])")
        assert {tuple(e) for e in edges} == expected_edges and len(edges) == len(expected_edges)
        # clicking a node highlights what it reads and what reads it
        page.click('#lineage g.node[data-id="model.stg_events"]')
        up = page.eval_on_selector_all("#lineage g.node.upstream", "els => els.map(e => e.dataset.id)")
        down = page.eval_on_selector_all("#lineage g.node.downstream", "els => els.map(e => e.dataset.id)")
        assert up == ["seed.events"]
        assert {"model.daily", "model.item_scores", "model.user_totals", "test.daily_positive"} <= set(down)
        assert "seed.items" not in up + down
        assert "staging.stg_events" in page.inner_text("#panel")
        page.screenshot(path=str(shots / "lineage.png"))
        page.dblclick('#lineage g.node[data-id="model.item_scores"]')
        page.wait_for_url("**/nodes/model.item_scores.html")
        assert "mean_score" in page.inner_text("table.columns")
        page.screenshot(path=str(shots / "model.png"), full_page=True)
        for name, n_charts in (("results/overview.html", 4), ("runs.html", 1)):
            page.goto((docs / name).as_uri())
            charts = page.eval_on_selector_all(
                "figure.chart svg", "els => els.map(s => [s.getBBox().width, s.querySelectorAll('path').length])")
            assert len(charts) == n_charts, name
            assert all(width > 100 and paths > 5 for width, paths in charts), (name, charts)
            page.screenshot(path=str(shots / (Path(name).stem + ".png")), full_page=True)
        browser.close()
    assert problems == []
    assert {f.name for f in shots.iterdir()} == {"lineage.png", "model.png", "overview.png", "runs.png"}


def test_docs_serve_serves_the_site_on_localhost(site):
    import subprocess
    import sys
    import urllib.request

    root, index = site
    proc = subprocess.Popen([sys.executable, "-m", "duckrec.cli", "docs", "serve", "--port", "0", "--project-dir",
                             str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://\S+/", line).group(0)
        with urllib.request.urlopen(url + "index.html", timeout=10) as response:
            assert response.read().decode() == index.read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_docs_serve_without_a_site_says_to_generate(tmp_path, capsys):
    root = write_project(tmp_path / "p", TINY)
    result = run(capsys, root, "docs", "serve", "--port", "0")
    assert result.code == 2 and "run `duckrec docs generate` first" in result.err


def test_the_projects_result_pages_read_models_it_has():
    from duckrec.docs.reports import load_pages

    project = load_project(Path(__file__).resolve().parents[2])
    pages = load_pages(project)
    assert [p.title for p in pages] == ["Strategies", "Exploration trade-off", "RFM segments", "Training",
                                        "Quality over time"]
    refs = {r for p in pages for b in p.blocks for r in b.refs}
    # metrics_history is drawn once the project has it; every other page reads existing models
    assert {r for r in refs if project.by_name(r) is None} <= {"metrics_history"}
    assert {"metrics", "new_item_metrics", "tradeoff", "metrics_by_segment", "user_rfm", "lm_training_log"} <= refs
