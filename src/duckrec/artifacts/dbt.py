"""target/manifest.json and target/run_results.json in dbt's published schemas (manifest v12,
run-results v6), so tools that read dbt's artifacts (lineage viewers, monitors) read ours.

Inside duckrec a node is "model.name"; in the artifacts it has dbt's id, "model.<project>.<name>"
("test.<project>.<name>.<hash>" for a generic test, "source.<project>.<source>.<table>").
"""
from __future__ import annotations

import hashlib
import time
from datetime import datetime, timezone
from typing import Any

from duckrec import __version__
from duckrec.core.nodes import Node, Project
from duckrec.render.macro_syntax import MACRO_RE, called

MANIFEST_SCHEMA = "https://schemas.getdbt.com/dbt/manifest/v12.json"
RUN_RESULTS_SCHEMA = "https://schemas.getdbt.com/dbt/run-results/v6.json"
DBT_VERSION = f"1.10.0+duckrec.{__version__}"  # the dbt artifact version these follow


def test_metadata(spec: dict[str, Any]) -> dict[str, Any]:
    """dbt's `test_metadata` of a generic test: its name, its arguments (with the column and the
    model as dbt writes them) and no namespace."""
    kwargs = {**spec.get("kwargs", {}), "column_name": spec.get("column"),
              "model": f"{{{{ get_where_subquery(ref('{spec['model']}')) }}}}"}
    return {"name": spec["type"], "kwargs": kwargs, "namespace": None}


def _hashable(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _hashable(data[k]) for k in sorted(data)}
    if isinstance(data, list):
        return [_hashable(v) for v in data]
    return str(data)


def dbt_id(project: Project, node: Node) -> str:
    if node.kind == "test" and node.test and node.test.get("type") != "singular":
        # dbt's suffix: the last 10 hex digits of md5(name + repr of the sorted, stringified metadata)
        digest = hashlib.md5((node.name + repr(_hashable(test_metadata(node.test)))).encode()).hexdigest()[-10:]
        return f"test.{project.name}.{node.name}.{digest}"
    return f"{node.kind}.{project.name}.{node.name}"


def internal_ids(project: Project) -> dict[str, str]:
    """dbt id -> duckrec id, for reading artifacts back (result: selection, retry)."""
    out = {dbt_id(project, n): u for u, n in project.nodes.items()}
    out.update({u: u for u in project.nodes})  # artifacts written before dbt ids
    return out


def _metadata(project: Project, schema: str, invocation_id: str | None, target: str | None) -> dict[str, Any]:
    return {"dbt_schema_version": schema, "dbt_version": DBT_VERSION,
            "generated_at": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
            "invocation_id": invocation_id, "env": {"DUCKREC_TARGET": target or project.default_target}}


def _database(project: Project, target: str | None) -> str:
    try:
        return project.warehouse_path(target).stem
    except Exception:  # noqa: BLE001 - an unknown target is reported elsewhere
        return project.name


def _resource_path(project: Project, node: Node) -> str:
    """dbt's `path`: relative to the folder the resource type lives in."""
    key = {"seed": "seeds", "test": "data_tests"}.get(node.kind, "python_models" if node.language == "python"
                                                        else "sql")
    base = project.paths.get(key, "")
    if node.kind == "test" and node.test and node.test.get("type") != "singular":
        return f"{node.test.get('alias') or node.name}.sql"
    prefix = base.rstrip("/") + "/"
    return node.path[len(prefix):] if node.path.startswith(prefix) else node.path


def _macros(project: Project) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    base = project.paths["macros"].rstrip("/") + "/"
    for rel in project.macro_files:
        text = (project.root / rel).read_text(encoding="utf-8")
        for m in MACRO_RE.finditer(text):
            uid = f"macro.{project.name}.{m.group(1)}"
            out[uid] = {
                "name": m.group(1), "resource_type": "macro", "package_name": project.name,
                "path": rel[len(base):] if rel.startswith(base) else rel, "original_file_path": rel,
                "unique_id": uid, "macro_sql": m.group(0), "depends_on": {"macros": []}, "description": "",
                "meta": {}, "docs": {"show": True, "node_color": None}, "patch_path": None,
                "arguments": [{"name": a.split("=")[0].strip(), "type": None, "description": ""}
                              for a in m.group(2).split(",") if a.strip()],
                "created_at": time.time(), "supported_languages": None,
            }
    names = {m["name"]: uid for uid, m in out.items()}
    for m in out.values():
        m["depends_on"]["macros"] = _called(m["macro_sql"].split("%}", 1)[-1], names)
    return out


def _called(code: str, names: dict[str, str]) -> list[str]:
    if not names or not code:
        return []
    return sorted({names[n] for n in called(code) if n in names})


def _columns(node: Node) -> dict[str, Any]:
    return {c.name: {"name": c.name, "description": c.description, "meta": {}, "data_type": c.data_type,
                     "constraints": [], "quote": None, "tags": [], "granularity": None, "doc_blocks": []}
            for c in node.columns.values()}


def manifest(project: Project, target: str | None, compiled_path) -> dict[str, Any]:
    """The manifest: every node, source, macro and docs block, with parent and child maps."""
    db = _database(project, target)
    ids = {u: dbt_id(project, n) for u, n in project.nodes.items()}
    macros = _macros(project)
    macro_names = {m["name"]: uid for uid, m in macros.items()}
    sources: dict[str, dict[str, Any]] = {}
    source_ids: dict[tuple[str, str], str] = {}
    for (a, b), s in project.sources.items():
        uid = f"source.{project.name}.{a}.{b}"
        source_ids[(a, b)] = uid
        sources[uid] = {
            "database": db, "schema": s.schema, "name": b, "resource_type": "source", "package_name": project.name,
            "path": s.path, "original_file_path": s.path, "unique_id": uid, "fqn": [project.name, a, b],
            "source_name": a, "source_description": "", "loader": "", "identifier": s.identifier,
            "quoting": {"database": None, "schema": None, "identifier": None, "column": None},
            "loaded_at_field": None, "freshness": None, "external": None, "description": s.description,
            "columns": {}, "meta": {}, "source_meta": {}, "tags": [], "config": {"enabled": True},
            "patch_path": None, "unrendered_config": {}, "relation_name": f'"{db}"."{s.schema}"."{s.identifier}"',
            "created_at": time.time(),
        }
    nodes: dict[str, dict[str, Any]] = {}
    now = time.time()
    for u, n in project.nodes.items():
        uid = ids[u]
        alias = (n.test or {}).get("alias") or n.config.get("alias") or n.name
        config = {"enabled": True, "alias": n.config.get("alias"), "schema": n.config.get("schema"),
                  "database": None, "tags": n.tags, "meta": n.config.get("meta") or {},
                  "materialized": n.materialized if n.kind == "model" else ("seed" if n.kind == "seed" else "test"),
                  **{k: v for k, v in n.config.items() if k not in ("tags", "meta")}}
        parents = [ids[d] for d in n.depends_on if d in ids]
        parents += [source_ids[s] for s in n.sources if s in source_ids]
        entry: dict[str, Any] = {
            "database": db, "schema": n.schema, "name": n.name, "resource_type": n.kind,
            "package_name": project.name, "path": _resource_path(project, n), "original_file_path": n.path,
            "unique_id": uid, "fqn": [project.name] + n.fqn, "alias": alias,
            "checksum": {"name": "sha256", "checksum": hashlib.sha256(n.raw_code.encode()).hexdigest()},
            "config": config, "tags": n.tags, "description": n.description, "columns": _columns(n), "meta": {},
            "group": None, "docs": {"show": True, "node_color": None}, "patch_path": None, "build_path": None,
            "unrendered_config": {}, "created_at": now,
        }
        if n.kind == "seed":
            entry.update({"root_path": str(project.root), "depends_on": {"macros": []}, "raw_code": "",
                          "relation_name": f'"{db}"."{n.schema}"."{alias}"'})
        else:
            entry.update({
                "relation_name": None if n.kind == "test" or n.materialized == "ephemeral"
                else f'"{db}"."{n.schema}"."{alias}"',
                "raw_code": n.raw_code, "language": n.language if n.language != "csv" else "sql",
                "refs": [{"name": r, "package": None, "version": None} for r in n.refs],
                "sources": [[a, b] for a, b in n.sources], "metrics": [],
                "depends_on": {"macros": _called(n.raw_code, macro_names), "nodes": list(dict.fromkeys(parents))},
                "compiled_path": str(compiled_path(project, n).relative_to(project.root)),
                "contract": {"enforced": bool((n.config.get("contract") or {}).get("enforced")),
                             "alias_types": True, "checksum": None},
            })
        if n.kind == "model":
            entry.update({"access": "protected", "constraints": [], "version": None, "latest_version": None,
                          "deprecation_date": None})
        if n.kind == "test" and n.test and n.test.get("type") != "singular":
            spec = n.test
            entry.update({"test_metadata": test_metadata(spec),
                          "column_name": spec.get("column"), "file_key_name": f"models.{spec['model']}",
                          "attached_node": ids.get(n.attached_to) if n.attached_to else None})
        nodes[uid] = entry
    docs = {f"doc.{project.name}.{name}": {
        "name": name, "resource_type": "doc", "package_name": project.name, "path": path,
        "original_file_path": path, "unique_id": f"doc.{project.name}.{name}", "block_contents": text}
        for name, (path, text) in project.doc_blocks.items()}
    parent_map = {uid: list(n["depends_on"]["nodes"]) if "nodes" in n["depends_on"] else []
                  for uid, n in nodes.items()}
    parent_map.update({uid: [] for uid in sources})
    child_map: dict[str, list[str]] = {uid: [] for uid in parent_map}
    for uid, parents in parent_map.items():
        for p in parents:
            child_map.setdefault(p, []).append(uid)
    return {
        "metadata": {**_metadata(project, MANIFEST_SCHEMA, None, target), "project_name": project.name,
                     "adapter_type": "duckdb"},
        "nodes": nodes, "sources": sources, "macros": macros, "docs": docs, "exposures": {}, "metrics": {},
        "groups": {}, "selectors": {}, "disabled": {}, "parent_map": parent_map,
        "child_map": {k: sorted(v) for k, v in child_map.items()}, "group_map": {}, "saved_queries": {},
        "semantic_models": {}, "unit_tests": {},
    }


def run_results(project: Project, run_id: str, command: str, elapsed: float, results: list,
                args: dict[str, Any] | None = None) -> dict[str, Any]:
    ids = {u: dbt_id(project, n) for u, n in project.nodes.items()}
    out = []
    for r in results:
        timing = [{"name": "execute", "started_at": _iso(r.started_at), "completed_at": _iso(r.finished_at)}]
        out.append({
            "status": r.status, "timing": timing, "thread_id": "Thread-1", "execution_time": r.seconds,
            "adapter_response": {"_message": f"OK {r.rows}" if r.rows is not None else "OK",
                                 "rows_affected": r.rows},
            "message": r.message or None,
            "failures": r.rows if r.kind == "test" and r.status in ("fail", "warn", "pass") else None,
            "unique_id": ids.get(r.unique_id, r.unique_id), "compiled": None, "compiled_code": None,
            "relation_name": None if r.kind == "test" else r.relation, "batch_results": None,
        })
    return {"metadata": _metadata(project, RUN_RESULTS_SCHEMA, run_id, None), "results": out,
            "elapsed_time": elapsed, "args": {"which": command, **(args or {})}}


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def read_statuses(project: Project) -> dict[str, str] | None:
    """duckrec id -> status of the last run's target/run_results.json; None when there is none."""
    import json

    path = project.path("target") / "run_results.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    back = internal_ids(project)
    return {back[r["unique_id"]]: r["status"] for r in data.get("results", []) if r.get("unique_id") in back}
