"""A tiny recommendations project for the BI client tests: `recs.served_recommendations` (a
view with descriptions, as the real project's) over a table, and `main.build_info`; every
relation carries the build id passed as `--vars '{build_id: N}'`, so a query tells which
build it read, and a query over two relations tells whether it mixed two builds."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from engine_fixtures import built_copy, run

BI_PROJECT = {
    "project.yml": """
        name: bishop
        targets: {dev: {warehouse: warehouse.duckdb}}
        vars: {build_id: 1}
        models:
          +persist_docs: {relation: true, columns: true}
          +materialized: table
          recs: {+schema: recs}
    """,
    "seeds/items.csv": """
        item_id,title
        10,The Matrix
        11,Heat
        12,Up
    """,
    "sql/build_info.sql": "select {{ var('build_id') }}::integer as build_id",
    "sql/recs/recommendations.sql": """
        select u.user_id, r.rank, (10 + (u.user_id + r.rank) % 3)::bigint as item_id,
               {{ var('build_id') }}::integer as build_id
        from range(1, 4) u(user_id), range(1, 3) r(rank)
    """,
    "sql/recs/served_recommendations.sql": """
        {{ config(materialized='view') }}
        select r.user_id, r.rank, r.item_id, i.title, r.build_id
        from {{ ref('recommendations') }} r join {{ ref('items') }} i using (item_id)
    """,
    "models/props.yml": """
        version: 2
        models:
          - name: served_recommendations
            description: Recommendations for dashboards, one row per user and rank.
            columns:
              - name: user_id
                description: The user the list is for.
              - name: rank
                description: Position in the list, 1 first.
              - name: title
                description: The title in natural order.
              - name: build_id
                description: The build that wrote this row.
    """,
}


def bi_project(tmp_path: Path, tmp_path_factory) -> Path:
    """A built copy of BI_PROJECT (build 1) for one test."""
    return built_copy(tmp_path / "project", BI_PROJECT, tmp_path_factory.getbasetemp())


def publish(capsys, root: Path, build_id: int) -> None:
    """A real build with a new build id: every relation is rebuilt and published by rename."""
    result = run(capsys, root, "build", "--vars", f"{{build_id: {build_id}}}")
    assert result.code == 0, result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """`duckrec serve --port 0` in its own process; the port it printed."""

    def __init__(self, root: Path, *args: str, env: dict[str, str] | None = None):
        src = str(Path(__file__).resolve().parents[2] / "src")
        environ = {**os.environ, **(env or {}), "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.proc = subprocess.Popen([sys.executable, "-m", "duckrec.cli", "serve", "--port", "0", *args,
                                      "--project-dir", str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=environ)
        self.banner = []
        deadline = time.monotonic() + 60
        while True:
            line = self.proc.stdout.readline()
            if not line:
                self.stop()
                raise AssertionError(f"duckrec serve did not start:\n{''.join(self.banner)}\n{self.proc.stderr.read()}")
            self.banner.append(line)
            if line.startswith("listening on "):
                self.port = int(line.split()[2].rstrip(";").rsplit(":", 1)[1])
                return
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError("duckrec serve printed no `listening on` line")

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err

    def __enter__(self) -> "Served":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
