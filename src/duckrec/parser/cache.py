"""The partial-parse cache (target/partial_parse.pickle): a parsed project reused while
no project file changed, as dbt's partial parsing does."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from duckrec.core.nodes import PROJECT_FILE, Project

CACHE_FILE = "partial_parse.pickle"


def cached_parse(root: str | Path, cli_vars: dict[str, Any] | None,
                 parse: Callable[[Path, dict[str, Any] | None], Project]) -> Project:
    """The parsed project; reuses target/partial_parse.pickle while no project file changed.

    Like dbt's partial parsing: an unchanged project skips YAML parsing and file reads. Parsing
    renders some models with the vars, so other --vars (or another $DBT_PROFILES_DIR) parse again.
    """
    import pickle

    from duckrec import __version__

    root = Path(root).resolve()
    cache = root / "target" / CACHE_FILE
    try:
        with open(cache, "rb") as f:
            cached = pickle.load(f)
        if (cached["version"] == __version__ and cached["cli_vars"] == (cli_vars or {})
                and cached.get("profiles_dir") == os.environ.get("DBT_PROFILES_DIR")
                and cached["signature"] == _signature(root, cached["dirs"])):
            return cached["project"]
    except Exception:  # noqa: BLE001 - any unreadable or stale cache just means a full parse
        pass
    import time

    started = time.time_ns()
    project = parse(root, cli_vars)
    dirs = sorted({project.paths[k] for k in ("sql", "python_models", "models", "seeds", "macros", "data_tests")})
    signature = _signature(root, dirs)
    if any(mtime >= started - 2_000_000_000 for _, mtime, _ in signature):
        # a file saved while we parsed could be cached with a stale parse: skip caching this time
        return project
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(CACHE_FILE + f".{os.getpid()}")
        with open(tmp, "wb") as f:
            pickle.dump({"version": __version__, "dirs": dirs, "signature": signature,
                         "cli_vars": cli_vars or {}, "profiles_dir": os.environ.get("DBT_PROFILES_DIR"),
                         "project": project}, f)
        os.replace(tmp, cache)
    except OSError:
        pass
    return project


def _signature(root: Path, dirs: list[str]) -> list[tuple[str, int, int]]:
    """Path, mtime and size of the project file(s) and of every file under the project's folders."""
    out = []
    for name in (PROJECT_FILE, "dbt_project.yml", "profiles.yml"):
        try:
            st = os.stat(root / name)
        except FileNotFoundError:
            continue
        out.append((name, st.st_mtime_ns, st.st_size))
    for d in dirs:
        for base, subdirs, files in os.walk(root / d):
            subdirs[:] = sorted(x for x in subdirs if x != "__pycache__")
            for name in sorted(files):
                st = os.stat(os.path.join(base, name))
                out.append((os.path.join(base, name), st.st_mtime_ns, st.st_size))
    return out
