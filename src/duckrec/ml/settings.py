"""Settings dataclasses read from a project var (a mapping), with one rule for every var."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def settings_values(cls: type, values: Mapping | None, var: str, float_tuples: Iterable[str] = ()) -> dict[str, Any]:
    """The keyword arguments of dataclass ``cls`` from the mapping of var ``var``: an unknown key
    is a ValueError naming it and the known ones, and each key of ``float_tuples`` becomes a
    tuple of floats (YAML gives lists)."""
    values = dict(values or {})
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown {var} settings {unknown}; expected some of {sorted(known)}")
    for key in float_tuples:
        if key in values:
            values[key] = tuple(float(v) for v in values[key])
    return values
