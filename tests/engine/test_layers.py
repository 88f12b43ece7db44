"""The engine's layer contract and lint rules (pyproject.toml's [tool.importlinter] and
[tool.ruff]), checked as part of the suite: imports only go down, duckrec.ml imports nothing
of the engine, no import cycle in src/, no engine module over ~400 lines."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ENGINE_MAX_LINES = 400


def _run(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, env=env, timeout=600)


def test_import_linter_contracts_are_kept():
    done = _run([str(BIN / "lint-imports"), "--no-cache"])
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_passes():
    done = _run([str(BIN / "ruff"), "check", "src", "tests", "bench", "python_models"])
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_import_cycle_in_src():
    """No module of src/ imports, directly or not, a module that imports it back: every package's
    modules (and the packages) form a DAG in grimp's graph, lazy imports inside functions included."""
    code = (
        "import grimp, graphlib\n"
        "g = grimp.build_graph('duckrec', cache_dir=None)\n"
        "edges = {m: g.find_modules_directly_imported_by(m) for m in g.modules}\n"
        "graphlib.TopologicalSorter(edges).prepare()\n"
        "print(len(edges), 'modules, no cycle')\n"
    )
    done = _run([sys.executable, "-c", code])
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_engine_module_over_the_limit():
    src = REPO / "src" / "duckrec"
    long = {str(p.relative_to(src)): n for p in src.rglob("*.py")
            if p.relative_to(src).parts[0] != "ml" and (n := len(p.read_text(encoding="utf-8").splitlines())) > ENGINE_MAX_LINES}
    assert not long, f"engine modules over {ENGINE_MAX_LINES} lines: {long}"
