"""Progress of long Python models: `dbt.progress(task, done, total, figures, unit, final)`.

On a terminal each task is a live tqdm bar (done/total, rate, elapsed, remaining, the
figures as postfix); in logs (not a terminal, --log-format json, -q) it is one line at most
every LOG_INTERVAL seconds (QUIET_INTERVAL with -q), a JSON `progress` event with
--log-format json. The ML library only ever sees a plain callable.
"""
from __future__ import annotations

import time
from typing import Any

LOG_INTERVAL = 5.0
QUIET_INTERVAL = 30.0


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4g}"
    return str(value)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds}s"


class NodeProgress:
    """The `dbt.progress` callable of one node. `reporter` is the build's Reporter (it owns the
    output stream and the log format)."""

    _active: "NodeProgress | None" = None  # the one live bar on the terminal, if any

    def __init__(self, reporter, node, clock=time.monotonic):
        self.reporter, self.node, self.clock = reporter, node, clock
        self.task: str | None = None
        self.started, self.first_done = 0.0, 0
        self.last_line = float("-inf")
        self.bar = None

    @property
    def live(self) -> bool:
        out = self.reporter.out
        return (not self.reporter.json and not self.reporter.quiet and out is not None
                and hasattr(out, "isatty") and out.isatty())

    def __call__(self, task: str, done: int, total: int | None = None, figures: dict[str, Any] | None = None,
                 unit: str = "it", final: bool = False) -> None:
        now = self.clock()
        if task != self.task:
            self.close()
            # the first report comes after the first unit of work: rates count from there
            self.task, self.started, self.first_done = task, now, done
        figures = figures or {}
        if self.live:
            self._bar(task, done, total, figures, unit, final)
            return
        interval = QUIET_INTERVAL if self.reporter.quiet else LOG_INTERVAL
        if now - self.last_line < interval:
            return
        self.last_line = now
        elapsed = now - self.started
        remaining = elapsed / (done - self.first_done) * (total - done) if total and done > self.first_done else None
        if self.reporter.json:
            self.reporter._emit("", event="progress", node=self.node.unique_id, task=task, done=done, total=total,
                                unit=unit, elapsed=round(elapsed, 2),
                                remaining=None if remaining is None else round(remaining, 2),
                                figures=figures)
            return
        share = f" {100 * done / total:.0f}%" if total else ""
        parts = [f"{done}/{total} {unit}{share}" if total else f"{done} {unit}", f"{_duration(elapsed)} elapsed"]
        if remaining is not None and not final:
            parts.append(f"~{_duration(remaining)} left")
        parts += [f"{k} {_fmt(v)}" for k, v in figures.items()]
        self.reporter._emit(f"    {self.node.name} | {task}: " + ", ".join(parts), event="progress")

    def _bar(self, task, done, total, figures, unit, final) -> None:
        import shutil

        from tqdm import tqdm

        if self.bar is None:
            NodeProgress._active = self
            # a terminal that reports no size (0 x 0, e.g. under `script`) would hide the bar
            size = shutil.get_terminal_size((100, 20))
            self.bar = tqdm(total=total, desc=f"    {self.node.name} | {task}", unit=unit, file=self.reporter.out,
                            initial=done, leave=True, ncols=size.columns, nrows=size.lines, mininterval=0.2,
                            smoothing=0.1)
        self.bar.n = done
        if figures:
            self.bar.set_postfix({k: _fmt(v) for k, v in figures.items()}, refresh=False)
        self.bar.refresh()
        if final:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
            if NodeProgress._active is self:
                NodeProgress._active = None
        self.task = None


def close_live_bar() -> None:
    """Ends the live bar, if any, so that a log or node line does not print over it."""
    if NodeProgress._active is not None:
        NodeProgress._active.close()


def end_summary(results: list, slowest: int = 5) -> tuple[list[str], dict[str, Any]]:
    """The lines after a build's 'Finished' line: the slowest nodes that ran, and what was
    reused (unchanged, not rebuilt) or skipped; and the same as JSON fields."""
    ran = [r for r in results if r.status not in ("skipped", "reused")]
    top = sorted(ran, key=lambda r: -r.seconds)[:slowest]
    lines, event = [], {"slowest": [{"node": r.unique_id, "seconds": round(r.seconds, 3)} for r in top]}
    if top:
        lines.append("Slowest: " + ", ".join(f"{r.name} {r.seconds:.1f}s" for r in top))
    for status, word in (("reused", "Reused (unchanged)"), ("skipped", "Skipped")):
        names = [r.name for r in results if r.status == status]
        event[status] = names
        if names:
            shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
            lines.append(f"{word}: {len(names)}: {shown}")
    return lines, event
