"""`duckrec source freshness`: each source's age against its `freshness:` thresholds."""
from __future__ import annotations


from duckrec.core.nodes import Project
import json
from datetime import datetime

from duckrec.execute.freshness import check, checked_tables


def _age(seconds: float) -> str:
    for name, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if abs(seconds) >= size:
            n = seconds / size
            return f"{n:.1f} {name}s"
    return f"{seconds:.0f} seconds"


def run_freshness(project: Project, target: str | None, out) -> int:
    """`duckrec source freshness`: prints one line per table, writes target/sources.json."""
    from duckrec.warehouse.readers import connect_read_only

    tables = checked_tables(project)
    if not tables:
        out("no source or seed sets loaded_at_field: nothing to check (set it, with freshness: "
            "{warn_after: ..., error_after: ...}, in models/*.yml sources or seeds.<name>.+loaded_at_field)")
        return 0
    con = connect_read_only(project.warehouse_path(target))
    try:
        results = check(con, project)
    finally:
        con.close()
    for r in results:
        label = {"pass": "PASS", "warn": "WARN", "error": "ERROR", "runtime error": "ERROR"}[r["status"]]
        if "max_loaded_at_time_ago_in_s" in r:
            detail = f"newest {r['max_loaded_at']}, {_age(r['max_loaded_at_time_ago_in_s'])} old"
        else:
            detail = r["message"]
        out(f"{label:<5} {r['unique_id']} ({r['relation']}): {detail}")
    path = project.path("target") / "sources.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"metadata": {"generated_at": datetime.now().isoformat()},
                                "results": results}, indent=1, default=str), encoding="utf-8")
    n_error = sum(r["status"] in ("error", "runtime error") for r in results)
    n_warn = sum(r["status"] == "warn" for r in results)
    out(f"Checked {len(results)} table(s): {len(results) - n_error - n_warn} pass, {n_warn} warn, {n_error} error.")
    return 1 if n_error else 0
