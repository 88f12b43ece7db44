"""Reuse: which nodes a build may skip, and the state that proves it.

`_duckrec.node_state` keeps, for each node, the fingerprint of the relation it last built,
the definition and metadata hashes, and a hash of the relation's content as that build
left it. It lives inside the warehouse, so it is published (or thrown away) together with
the tables it describes. The rule a user can check:

- a node is reused when its fingerprint equals the stored one, it last succeeded, and its
  relation is still exactly what that build wrote (same rows, by hash; a view: same SQL);
- a parent's fingerprint is that of the relation this build really reads: a node the build
  runs counts with what it just built; one it does not run counts with its stored state,
  and only when its relation is intact; a parent whose state is unknown (never recorded,
  dropped by `--empty`, or its table written outside a build by `run-operation`, a BI
  client or a replayed log) counts as absent, which no stored fingerprint matches;
- a metadata-only change (tags, docs, descriptions) refreshes the comments and the state
  row, and rebuilds nothing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from duckrec.core.sql import sql_string
from duckrec.state.fingerprint import Fingerprints
from duckrec.core.nodes import Node, Project

STATE_COLUMNS = [("unique_id", "varchar"), ("fingerprint", "varchar"), ("definition", "varchar"),
                 ("run_id", "varchar"), ("built_at", "timestamp"), ("status", "varchar"), ("rows", "bigint"),
                 ("detail", "json"), ("metadata", "varchar"), ("content", "varchar")]
STATE_DDL = ("create schema if not exists _duckrec;\ncreate table if not exists _duckrec.node_state ("
             + ", ".join(f"{n} {t}" + (" primary key" if n == "unique_id" else "") for n, t in STATE_COLUMNS) + ");")
OK = ("success", "pass", "reused")


@dataclass
class Stored:
    fingerprint: str
    definition: str
    status: str
    rows: int | None
    detail: dict[str, Any]
    run_id: str | None = None
    built_at: Any = None
    metadata: str | None = None
    content: str | None = None

    def row(self, uid: str, **changes: Any) -> list[Any]:
        values = {**self.__dict__, **changes}
        return [uid, values["fingerprint"], values["definition"], values["run_id"], values["built_at"],
                values["status"], values["rows"], json.dumps(values["detail"] or {}, default=str),
                values["metadata"], values["content"]]


def read_state(con) -> dict[str, Stored]:
    """The stored state of a warehouse connection; empty when it has none yet."""
    try:
        have = {r[0] for r in con.execute(
            "select column_name from duckdb_columns() where database_name = current_database() "
            "and schema_name = '_duckrec' and table_name = 'node_state'").fetchall()}
        if not have:
            return {}
        select = ", ".join(n if n in have else f"null as {n}" for n, _ in STATE_COLUMNS)
        rows = con.execute(f"select {select} from _duckrec.node_state").fetchall()
    except Exception:  # noqa: BLE001 - a warehouse built before fingerprints
        return {}
    return {r[0]: Stored(fingerprint=r[1], definition=r[2], run_id=r[3], built_at=r[4], status=r[5], rows=r[6],
                         detail=json.loads(r[7]) if r[7] else {}, metadata=r[8], content=r[9]) for r in rows}


def relation_contents(con, nodes: list[Node]) -> dict[str, str | None]:
    """What each node's relation holds now, in one query for all of them (a query each would
    cost a 500-model build as much again): the row count and an order-independent hash of
    its rows (a table), or a hash of its SQL (a view); None when it does not exist."""
    if not nodes:
        return {}
    names = [[n.unique_id, n.schema, n.config.get("alias") or n.name] for n in nodes]
    found: dict[str, str | None] = {n.unique_id: None for n in nodes}
    rows = con.execute(
        "select n[1], coalesce(t.kind, v.kind), v.sql from (select unnest(?::varchar[][]) as n) x "
        "left join (select schema_name, table_name, 'TABLE' as kind from duckdb_tables() "
        "           where database_name = current_database()) t on t.schema_name = n[2] and t.table_name = n[3] "
        "left join (select schema_name, view_name, 'VIEW' as kind, sql from duckdb_views() "
        "           where database_name = current_database()) v on v.schema_name = n[2] and v.view_name = n[3]",
        [names]).fetchall()
    by_id = {n.unique_id: n for n in nodes}
    tables = []
    for uid, kind, sql in rows:
        if kind == "VIEW":
            found[uid] = "view:" + hash_text(sql)
        elif kind == "TABLE":
            tables.append(uid)
    for i in range(0, len(tables), 100):
        parts = [f"select {sql_string(uid)} as uid, count(*) as n, coalesce(sum(hash(t)), 0)::varchar as h "
                 f"from {by_id[uid].relation} t" for uid in tables[i:i + 100]]
        for uid, count, total in con.execute(" union all ".join(parts)).fetchall():
            found[uid] = f"{count}:{total}"
    return found


def hash_text(text: str) -> str:
    from duckrec.state.fingerprint import digest

    return digest(text)


class StateWriter:
    """Keeps `_duckrec.node_state` of the build's private copy in step with what it built."""

    def __init__(self, con, exists: bool):
        con.execute(STATE_DDL)
        if exists:  # a warehouse from before the metadata and content columns
            for name, kind in STATE_COLUMNS:
                con.execute(f"alter table _duckrec.node_state add column if not exists {name} {kind}")
        self.rows: dict[str, list[Any]] = {}
        self.drop: set[str] = set()

    def write(self, uid: str, row: list[Any]) -> None:
        self.rows[uid] = row
        self.drop.discard(uid)

    def forget(self, uid: str) -> None:
        self.rows.pop(uid, None)
        self.drop.add(uid)

    def flush(self, con) -> None:
        from duckrec.warehouse.readers import insert_rows

        ids = list(self.rows) + sorted(self.drop)
        if ids:
            con.execute("delete from _duckrec.node_state where unique_id in (select unnest(?::varchar[]))", [ids])
        insert_rows(con, "_duckrec.node_state", [t for _, t in STATE_COLUMNS], list(self.rows.values()))


class Reuse:
    """The runner's hook: decide per node whether its relation can be reused, and record
    the state each node's relation now has."""

    def __init__(self, con, project: Project, renderer, catalog, plan: list[str], run_id: str,
                 enabled: bool, recording: bool = True):
        self.con = con
        self.project = project
        self.catalog = catalog
        self.run_id = run_id
        self.enabled = enabled
        self.recording = recording
        self.planned = set(plan)
        self.stored = read_state(con)
        self.fps = Fingerprints(project, renderer)
        self.sources = self.fps.source_data(con) if project.sources else {}
        self.actual: dict[str, str] = {}  # the fingerprint of the relation this build reads per node
        self._intact: dict[str, bool] = {}
        self._content_then: dict[str, str | None] | None = None  # relations as the build found them
        self._contents_due: dict[str, Node] = {}  # built nodes whose content is read at flush
        self.writer = StateWriter(con, exists=("_duckrec", "node_state") in catalog.relations)

    def absent(self) -> str:
        """A fingerprint no stored state matches: a relation whose origin is unknown."""
        return f"absent:{self.run_id}"

    def _parent(self, uid: str) -> str | None:
        if uid in self.actual:
            return self.actual[uid]
        node = self.project.nodes.get(uid)
        if node is None or (node.kind == "model" and node.materialized == "ephemeral"):
            return None  # inlined where it is used: its definition is what counts
        if uid in self.planned:
            return None  # not reached yet (only state: selection asks this early)
        old = self.stored.get(uid)
        self.actual[uid] = old.fingerprint if old is not None and self.intact(node, old) else self.absent()
        return self.actual[uid]

    def intact(self, node: Node, old: Stored) -> bool:
        """Whether the node's relation is still what the build that stored `old` left."""
        uid = node.unique_id
        if uid not in self._intact:
            if node.kind == "test" or (node.kind == "model" and node.materialized == "ephemeral"):
                self._intact[uid] = True
            else:
                if self._content_then is None:  # every stored relation's content, in one query
                    self._content_then = relation_contents(self.con, [
                        self.project.nodes[u] for u in self.stored if u in self.project.nodes
                        and self.project.nodes[u].kind != "test"
                        and self.project.nodes[u].materialized != "ephemeral"])
                now = self._content_then.get(uid)
                self._intact[uid] = now is not None and now == old.content
        return self._intact[uid]

    def fingerprint(self, node: Node) -> str | None:
        try:
            return self.fps.fingerprint(node, self._parent, self.sources)
        except Exception:  # noqa: BLE001 - a node that cannot render fails when it runs, with its message
            return None

    def reusable(self, node: Node) -> Stored | None:
        """The stored state to reuse, or None when the node must run. A metadata-only change
        is applied here: the comments are refreshed, nothing is rebuilt."""
        if not self.enabled:
            return None
        old = self.stored.get(node.unique_id)
        fp = self.fingerprint(node)
        if old is None or fp is None or old.fingerprint != fp:
            return None
        if old.status not in (("pass", "reused") if node.kind == "test" else ("success", "reused")):
            return None
        if not self.intact(node, old):
            return None
        if old.metadata != self.fps.metadata(node) and node.kind != "test":
            from duckrec.warehouse.relation_docs import refresh_docs

            kind = self.catalog.kind(node)
            if kind is not None:
                refresh_docs(self.con, node, "view" if kind == "VIEW" else "table")
        return old

    def record(self, node: Node, status: str, rows: int | None, when) -> None:
        uid = node.unique_id
        old = self.stored.get(uid)
        if not self.recording:
            # --empty: the relation holds zero rows now, which no fingerprint describes
            if status not in ("skipped", "reused"):
                self.actual[uid] = self.absent()
                self.writer.forget(uid)
            return
        if status == "warn" and node.kind != "test":
            status = "success"  # built, with a warning already reported (a seed's malformed rows)
        metadata = self.fps.metadata(node)
        if status in ("success", "pass"):
            fp = self.fingerprint(node)
            if fp is None:
                self.actual[uid] = self.absent()
                self.writer.forget(uid)
                return
            self.actual[uid] = fp
            content = None
            if node.kind != "test":
                self._contents_due[uid] = node  # read at flush, all in one query
            state = Stored(fp, self.fps.definition(node), status, rows, self.fps.detail.get(uid), self.run_id,
                           when, metadata, content)
            self.writer.write(uid, state.row(uid))
        elif status == "reused":
            self.actual[uid] = old.fingerprint
            if old.metadata != metadata:
                self.writer.write(uid, old.row(uid, metadata=metadata))
        elif status == "skipped":
            self.actual[uid] = old.fingerprint if old is not None and self.intact(node, old) else self.absent()
        else:
            # failed (or a warning test): the relation, if any, is still the one stored, as
            # long as it is intact; the node itself runs again next time
            self.actual[uid] = old.fingerprint if old is not None and self.intact(node, old) else self.absent()
            if old is not None:
                self.writer.write(uid, old.row(uid, status="error" if status != "warn" else "warn"))

    def flush(self, con) -> None:
        contents = relation_contents(con, list(self._contents_due.values()))
        for uid, row in self.writer.rows.items():
            if uid in contents:
                row[STATE_COLUMNS.index(("content", "varchar"))] = contents[uid]
        self.writer.flush(con)
