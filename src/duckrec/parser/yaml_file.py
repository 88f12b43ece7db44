"""YAML files read with the line of each mapping, for messages that name the line."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from duckrec.core.errors import ProjectError


def load_yaml(path: Path, rel: str) -> Any:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProjectError("file not found", path=rel) from None
    try:
        return yaml.load(text, Loader=_line_loader())
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        raise ProjectError(f"YAML syntax error: {e.problem or e}", path=rel, line=line) from None


_LOADER = None


def _line_loader():
    """A YAML loader that records each mapping's line as '__line__' for error messages."""
    global _LOADER
    if _LOADER is None:
        import yaml

        base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

        class LineLoader(base):  # type: ignore[misc, valid-type]
            def construct_mapping(self, node, deep=False):
                mapping = super().construct_mapping(node, deep=deep)
                mapping["__line__"] = node.start_mark.line + 1
                return mapping

        _LOADER = LineLoader
    return _LOADER


def line_of(d: Any) -> int | None:
    return d.get("__line__") if isinstance(d, dict) else None


def strip_lines(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_lines(v) for k, v in value.items() if k != "__line__"}
    if isinstance(value, list):
        return [strip_lines(v) for v in value]
    return value


# --------------------------------------------------------------------------- loading
