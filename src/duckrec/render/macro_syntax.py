"""How a macro definition and a call look in Jinja SQL: the one place the engine reads them
without rendering (the parser's dependencies, the renderer's fast path, the manifest)."""
from __future__ import annotations

import re

NAME = r"[A-Za-z_]\w*"
# `{% macro name` (or `{%- macro name`): group 1 the name
MACRO_HEAD = rf"\{{%-?\s*macro\s+({NAME})"
MACRO_NAME_RE = re.compile(MACRO_HEAD)
# a whole definition: group 1 the name, 2 the arguments, 3 the body
MACRO_RE = re.compile(MACRO_HEAD + r"\s*\((.*?)\)\s*-?%\}(.*?)\{%-?\s*endmacro\s*-?%\}", re.S)
# a call, `name(`: group 1 the name
CALL_RE = re.compile(rf"\b({NAME})\s*\(")


def called(code: str) -> list[str]:
    """The names `code` calls, each time it calls them, in order."""
    return CALL_RE.findall(code)
