"""Progress lines of a build for people (text) or schedulers (one JSON object per line)."""
from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

from duckrec.artifacts.target import NodeResult
from duckrec.execute.progress import close_live_bar
from duckrec.core.nodes import Node


class Reporter:
    """Progress lines for people (text) or schedulers (one JSON object per line)."""

    def __init__(self, quiet: bool = False, log_format: str = "text", out=None):
        self.quiet = quiet
        self.json = log_format == "json"
        self.out = out if out is not None else sys.stdout

    def _emit(self, text: str, **event: Any) -> None:
        if self.json:
            event.setdefault("ts", datetime.now().isoformat(timespec="milliseconds"))
            self._write(json.dumps(event, default=str) + "\n")
        else:
            self._write(f"{datetime.now():%H:%M:%S}  {text}\n")

    def _write(self, text: str) -> None:
        # A closed pipe (`duckrec build | head`) must not abort the build: stop printing instead.
        if self.out is None:
            return
        close_live_bar()
        try:
            self.out.write(text)
            self.out.flush()
        except (BrokenPipeError, ValueError):
            self.out = None

    def info(self, text: str, **event: Any) -> None:
        if not self.quiet:
            self._emit(text, event="info", message=text, **event)

    def waiting(self, text: str, **event: Any) -> None:
        """A line while the build waits for the warehouse (--wait): printed even with --quiet,
        like the heartbeat, so that a scheduler's log says why nothing happens."""
        self._emit(text, event="wait", message=text, **event)

    def node(self, index: int, total: int, node: Node, result: NodeResult) -> None:
        if self.quiet and result.status in ("success", "pass", "skipped", "reused"):
            return
        label = {"success": "OK", "pass": "PASS", "error": "ERROR", "fail": "FAIL", "warn": "WARN",
                 "skipped": "SKIP", "reused": "REUSE"}[result.status]
        what = f"test {node.name}" if node.kind == "test" else (
            f"seed {node.relation}" if node.kind == "seed" else f"{node.materialized} {node.relation}")
        detail = f"{result.seconds:.2f}s"
        if result.rows is not None and node.kind != "test":
            detail = f"{result.rows} rows in {detail}"
        elif node.kind == "test" and result.rows:
            detail = f"{result.rows} failing in {detail}"
        line = f"{index} of {total} {label:<5} {what} ".ljust(72, ".") + f" [{detail}]"
        if result.status in ("skipped", "reused"):
            line = f"{index} of {total} {label:<5} {what}  ({result.message or 'fingerprint unchanged'})"
        self._emit(line, event="node", node=node.unique_id, status=result.status, seconds=round(result.seconds, 4),
                   rows=result.rows, message=result.message)

    def log(self, node: Node, text: str) -> None:
        if not self.quiet:
            self._emit(f"    {node.name} | {text}", event="log", node=node.unique_id, message=text)

    def notes(self, notes: list[tuple[Node, str]]) -> None:
        """Lines that nodes' `summary` queries returned, shown with the build's summary."""
        if not self.json and notes:
            self._write("\n" + "".join(f"{text}\n" for _, text in notes))
        for node, text in notes if self.json else ():
            self._emit(text, event="node_summary", node=node.unique_id, message=text)

    def summary(self, text: str, errors: list[tuple[Node, str]], **event: Any) -> None:
        if self.json:
            for node, message in errors:
                self._emit("", event="error", node=node.unique_id, message=message)
            self._emit(text, event="summary", message=text, **event)
            return
        for node, message in errors:
            self._write(f"\n{node.kind} {node.name} ({node.path}):\n  {message}\n")
        self._write(f"\n{text}\n")
