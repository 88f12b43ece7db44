"""Project vars checked against the schema the project declares, before anything runs.

`project.yml` names a YAML file (`vars_schema: vars_schema.yml`) holding a JSON Schema
(draft 2020-12) for the `vars:` mapping: types, ranges, allowed values. The engine knows
nothing of what the vars mean; it reports every var that breaks the schema with its
name, what was expected and what was found, e.g.
`vars.ks[0]: expected an integer >= 1, found 0`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from duckrec.core.errors import ProjectError

_TYPES = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false",
          "array": "a list", "object": "a mapping", "null": "null"}


def load_schema(root: Path, rel: str) -> dict[str, Any]:
    import jsonschema

    from duckrec.parser.yaml_file import load_yaml, strip_lines

    schema = strip_lines(load_yaml(root / rel, rel))
    if not isinstance(schema, dict):
        raise ProjectError("a vars schema is a mapping (JSON Schema for the vars: mapping)", path=rel)
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as e:
        raise ProjectError(f"not a valid JSON Schema at {_where(e.absolute_path, '')}: {e.message}", path=rel) from None
    return schema


def check_vars(variables: dict[str, Any], schema: dict[str, Any], rel: str) -> None:
    """Every var that breaks the schema, in one ProjectError (none: returns)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(variables), key=lambda e: [str(p) for p in e.absolute_path])
    if not errors:
        return
    lines = [_message(e) for e in errors]
    raise ProjectError(f"{len(lines)} var(s) break the project's vars schema ({rel}); fix project.yml vars: "
                       "or --vars:\n  " + "\n  ".join(lines), path="project.yml")


def _where(path, prefix: str = "vars") -> str:
    out = prefix
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "the top level"


def _message(e) -> str:
    found = e.instance
    if e.validator == "required":
        return f"{_where(e.absolute_path)}: {e.message}"
    if e.validator == "additionalProperties":
        return f"{_where(e.absolute_path)}: {e.message} (a misspelt var? the schema lists the known ones)"
    return f"{_where(e.absolute_path)}: expected {describe(e.schema)}, found {found!r}"


def describe(schema: dict[str, Any]) -> str:
    """'an integer >= 1', "one of ['gru', 'lstm']", 'a list of an integer >= 1 (at least 1 item)'."""
    if "enum" in schema:
        return f"one of {schema['enum']}"
    if "const" in schema:
        return repr(schema["const"])
    if "anyOf" in schema or "oneOf" in schema:
        return " or ".join(describe(s) for s in schema.get("anyOf") or schema.get("oneOf"))
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    text = " or ".join(_TYPES.get(k, k) for k in kinds) or "a value"
    bounds = []
    for key, op in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<")):
        if key in schema:
            bounds.append(f"{op} {schema[key]}")
    if bounds:
        text += " " + " and ".join(bounds)
    if "items" in schema and isinstance(schema["items"], dict):
        text += f" of {describe(schema['items'])}"
    if "minItems" in schema:
        text += f" (at least {schema['minItems']} item{'s' if schema['minItems'] != 1 else ''})"
    if schema.get("description"):
        text += f" ({schema['description']})"
    return text
