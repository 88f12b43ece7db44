"""Source freshness and the data watermark, as in dbt.

A source table (YAML `sources:`) or a seed (`+loaded_at_field` in project.yml) that names a
`loaded_at_field` (a column or SQL expression giving a TIMESTAMP) has a newest time: the
build records the newest over all of them as the run's data watermark, and
`duckrec source freshness` compares each one's age with its `freshness:` thresholds:

    freshness:
      warn_after: {count: 2, period: day}     # period: minute | hour | day
      error_after: {count: 7, period: day}

Exit code: 0 when every checked table passes or only warns, 1 when one is past error_after
or cannot be read, 2 for a project error (as every duckrec command).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from duckrec.core.errors import ProjectError
from duckrec.core.nodes import PROJECT_FILE, Project

PERIODS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass
class Checked:
    name: str             # "source.shop.orders" or "seed.ratings"
    relation: str
    loaded_at_field: str
    freshness: dict[str, Any] | None
    where: str            # the file that configures it


def checked_tables(project: Project) -> list[Checked]:
    out: list[Checked] = []
    for (a, b), src in sorted(project.sources.items()):
        if src.loaded_at_field:
            out.append(Checked(f"source.{a}.{b}", src.relation, str(src.loaded_at_field), src.freshness, src.path))
    for node in sorted(project.nodes.values(), key=lambda n: n.unique_id):
        if node.kind in ("seed", "model") and node.config.get("loaded_at_field"):
            out.append(Checked(node.unique_id, node.relation, str(node.config["loaded_at_field"]),
                               node.config.get("freshness"), PROJECT_FILE if node.kind == "seed" else node.path))
    return out


def _threshold(value: Any, key: str, where: str) -> timedelta | None:
    if value is None:
        return None
    if not isinstance(value, dict) or "count" not in value or value.get("period") not in PERIODS:
        raise ProjectError(f"freshness.{key} must look like {{count: 2, period: day}} (period: minute, hour or day); "
                           f"found {value!r}", path=where)
    try:
        return timedelta(seconds=float(value["count"]) * PERIODS[value["period"]])
    except (TypeError, ValueError):
        raise ProjectError(f"freshness.{key}.count must be a number, found {value['count']!r}", path=where) from None


def newest(con, table: Checked) -> datetime | None:
    row = con.execute(f"select max(({table.loaded_at_field})::timestamp) from {table.relation}").fetchone()
    return row[0] if row else None


def watermark(con, project: Project) -> datetime | None:
    """The newest loaded_at time over every checked table that exists (None when none does)."""
    times = []
    for table in checked_tables(project):
        try:
            value = newest(con, table)
        except Exception:  # noqa: BLE001 - a table this build did not create has no watermark
            continue
        if value is not None:
            times.append(value)
    return max(times) if times else None


def check(con, project: Project, now: datetime | None = None) -> list[dict[str, Any]]:
    """One result per checked table: status pass | warn | error | runtime error."""
    now = now or datetime.now(timezone.utc).replace(tzinfo=None)
    results = []
    for table in checked_tables(project):
        fresh = table.freshness or {}
        warn = _threshold(fresh.get("warn_after"), "warn_after", table.where)
        error = _threshold(fresh.get("error_after"), "error_after", table.where)
        result: dict[str, Any] = {"unique_id": table.name, "relation": table.relation,
                                  "loaded_at_field": table.loaded_at_field}
        try:
            value = newest(con, table)
        except Exception as e:  # noqa: BLE001 - reported per table, like dbt's runtime error
            results.append({**result, "status": "runtime error",
                            "message": f"cannot read max({table.loaded_at_field}) from {table.relation}: {e}"})
            continue
        if value is None:
            results.append({**result, "status": "error", "max_loaded_at": None,
                            "message": f"{table.relation} has no rows with a {table.loaded_at_field}"})
            continue
        age = now - value
        status = "pass"
        if error is not None and age > error:
            status = "error"
        elif warn is not None and age > warn:
            status = "warn"
        results.append({**result, "status": status, "max_loaded_at": value.isoformat(sep=" "),
                        "snapshotted_at": now.isoformat(sep=" "), "max_loaded_at_time_ago_in_s": age.total_seconds(),
                        "criteria": {"warn_after": fresh.get("warn_after"), "error_after": fresh.get("error_after")}})
    return results
