"""`duckrec debug`: what duckrec reads and where it builds, and whether the warehouse opens."""
from __future__ import annotations

import sys
from collections.abc import Callable

from duckrec.core.errors import DuckrecError
from duckrec.core.nodes import Project


def debug(project: Project, target: str, out: Callable[[str], None]) -> int:
    """What duckrec reads and where it builds, and whether the warehouse opens."""
    import duckdb

    from duckrec import __version__

    ok = True
    out(f"duckrec {__version__}, duckdb {duckdb.__version__}, python {sys.version.split()[0]}")
    out(f"project: {project.name} ({project.root / project.config_file})")
    if project.config_file != "project.yml":
        from duckrec.parser.dbt_project import profiles_path

        found = profiles_path(project.root)
        out(f"profiles.yml: {found or 'not found (building into the default warehouse)'}")
    for key in ("sql", "python_models", "models", "seeds", "macros", "data_tests", "target"):
        path = project.path(key)
        out(f"  {key:<14} {project.paths[key]:<24} {'ok' if path.is_dir() else 'missing'}")
    path = project.warehouse_path(target)
    out(f"target: {target}; warehouse: {path}")
    for warning in project.warnings:
        out(f"  warning: {warning}")
    if path.exists():
        from duckrec.warehouse.readers import connect_read_only

        try:
            con = connect_read_only(path)
            con.execute("select 1").fetchall()
            con.close()
            out("  connection: ok (read-only)")
        except Exception as e:  # noqa: BLE001 - the point of debug is to say what fails
            ok = False
            out(f"  connection: FAILED: {e}")
    else:
        out("  connection: the warehouse does not exist yet (the first build creates it)")
    try:
        from duckrec import graph

        graph.link(project)
        out(f"  project: ok ({len(project.nodes)} nodes)")
    except DuckrecError as e:
        ok = False
        out(f"  project: {e}")
    ok = _debug_seeds(project, out) and ok
    out("All checks passed!" if ok else "Some checks failed.")
    return 0 if ok else 1


def _debug_seeds(project: Project, out: Callable[[str], None]) -> bool:
    """A line per seed: its file(s) found and readable, absent (optional), or what is wrong."""
    from duckrec.execute.seed_checks import check_seeds

    checks = check_seeds(project, sorted(u for u, n in project.nodes.items() if n.kind == "seed"))
    for check in checks:
        if check.problem:
            state = f"FAILED: {check.problem}"
        elif check.absent:
            state = "absent: optional, builds as an empty table (warning)"
        else:
            state = f"ok ({len(check.files)} files)" if len(check.files) > 1 else "ok"
        out(f"  seed {check.seed:<12} {check.path:<24} {state}")
    return not any(c.problem for c in checks)
