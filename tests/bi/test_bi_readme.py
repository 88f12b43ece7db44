"""The README's Python snippets for BI tools ("Connecting a BI tool") run as written, with
the example path and port replaced by a test warehouse and a test server."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy")
pytest.importorskip("psycopg")
pytest.importorskip("pandas")

from bi_fixtures import Served, bi_project  # noqa: E402
from engine_fixtures import warehouse  # noqa: E402
from duckrec.bi.dialect import register  # noqa: E402

README = Path(__file__).resolve().parents[2] / "README.md"


def _snippets() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Connecting a BI tool"):text.index("What a BI tool sees:")]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_readme_has_a_sqlalchemy_and_a_psycopg_snippet():
    snippets = _snippets()
    assert any("duckrec:////srv/duckrec/warehouse.duckdb" in s for s in snippets)
    assert any("psycopg.connect" in s and "port=5433" in s for s in snippets)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = bi_project(tmp_path_factory.mktemp("readme"), tmp_path_factory)
    with Served(root) as server:
        server.root = root
        yield server


def test_each_python_snippet_runs_against_a_built_warehouse_and_duckrec_serve(served):
    register()  # what the entry point does once duckrec[bi] is installed
    root = served.root
    for snippet in _snippets():
        code = snippet.replace("/srv/duckrec/warehouse.duckdb", str(warehouse(root))).replace(
            "port=5433", f"port={served.port}")
        scope: dict = {}
        exec(compile(code, "README.md", "exec"), scope)
        if "engine" in scope:
            assert scope["n"] == 6
            assert [c["name"] for c in scope["columns"]][:2] == ["user_id", "rank"]
            assert scope["columns"][0]["comment"] == "The user the list is for."
            assert len(scope["frame"]) == 6 and list(scope["frame"].columns) == ["user_id", "rank", "title"]
            scope["engine"].dispose()
        else:
            assert scope["rows"] and all(r[0] == 1 for r in scope["rows"])


def test_the_psql_line_runs_as_written(served):
    import shlex
    import shutil
    import subprocess

    if shutil.which("psql") is None:
        pytest.skip("psql is not installed (Debian: postgresql-client; .ci/run installs it)")
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Connecting a BI tool"):text.index("What a BI tool sees:")]
    line = next(l for l in section.splitlines() if l.startswith("psql "))
    args = shlex.split(line.replace("5433", str(served.port)))
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert "The title in natural order." in done.stdout
