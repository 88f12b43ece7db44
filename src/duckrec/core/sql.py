"""Quoting for SQL the engine writes: the one place a value or a name becomes SQL text."""
from __future__ import annotations

from typing import Any


def sql_string(value: Any) -> str:
    """A string literal, its single quotes doubled."""
    return "'" + str(value).replace("'", "''") + "'"


def quote_identifier(name: str) -> str:
    """A quoted name, its double quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def quoted_relation(schema: str, table: str) -> str:
    """schema.table, each part a quoted name."""
    return quote_identifier(schema) + "." + quote_identifier(table)


def sql_literal(value: Any) -> str:
    """A YAML or Jinja value as a literal: true/false, a number as Python writes it, else a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return sql_string(value)
