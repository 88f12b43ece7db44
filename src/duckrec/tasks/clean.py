"""`duckrec clean`: remove target/ (or the project's clean-targets), folders inside the project only."""
from __future__ import annotations

import shutil
from collections.abc import Callable

from duckrec.core.errors import DuckrecError
from duckrec.core.nodes import Project


def clean(project: Project, out: Callable[[str], None]) -> int:
    for rel in project.clean_targets or [project.paths["target"]]:  # dbt's clean-targets
        target = (project.root / rel).resolve()
        if target == project.root or project.root not in target.parents:
            raise DuckrecError(f"{rel!r} is not a folder inside the project: clean removes only such a folder",
                               path=project.config_file)
        if target.exists():
            shutil.rmtree(target)
            out(f"removed {target}")
    return 0
