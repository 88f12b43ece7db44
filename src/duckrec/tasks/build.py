"""`duckrec build` (and run, seed, test, retry): the selected nodes built in a private copy
of the warehouse and published; duckrec.execute.runner does the work."""
from __future__ import annotations

from duckrec.core.nodes import Project
from duckrec.execute.runner import Options, Runner


def build(project: Project, options: Options) -> int:
    return Runner(project, options).run()
