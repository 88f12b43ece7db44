"""The test folders: engine/ (the engine), bi/ (the BI dialect and server), docs/ (the docs site),
project/ (this project's SQL, models and pipeline). A fixture module lives beside the tests that
use it most; the folders are on sys.path so a test elsewhere imports it by name too
(engine_fixtures, bi_fixtures, docs_fixtures, sql_fixtures, reuse_project, holdout_perturbation).

What long-running property tests ran (budget and seed) is printed at the end of every run."""
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
for _folder in ("engine", "bi", "docs", "project"):
    if str(_HERE / _folder) not in sys.path:
        sys.path.insert(0, str(_HERE / _folder))


def pytest_terminal_summary(terminalreporter):
    import sys

    module = sys.modules.get("test_reuse_property")
    for line in getattr(module, "RUNS", []):
        terminalreporter.write_line(line)
