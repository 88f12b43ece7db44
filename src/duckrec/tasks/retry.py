"""`duckrec retry`: the last run's command and what failed, errored or was skipped in it."""
from __future__ import annotations


from duckrec.core.errors import ProjectError
from duckrec.core.nodes import Project


def retry_selection(project: Project) -> tuple[str, list[str]]:
    """The command of the last run and what to run again: what failed, errored or was skipped."""
    import json

    from duckrec.artifacts.dbt import internal_ids

    path = project.path("target") / "run_results.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProjectError(f"retry reruns what failed in the last run, and there is no {project.paths['target']}"
                           "/run_results.json yet") from None
    command = (data.get("args") or {}).get("which") or "build"
    back = internal_ids(project)
    # a run that published nothing (all or nothing) is retried whole: its successes never landed
    redo = ("error", "fail", "skipped", "runtime error")
    whole = (data.get("args") or {}).get("published") is False
    again = [back[r["unique_id"]] for r in data.get("results", [])
             if (whole or r.get("status") in redo) and r.get("unique_id") in back]
    return command, again
