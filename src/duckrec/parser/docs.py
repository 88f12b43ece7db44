"""dbt's docs blocks and the doc() calls in descriptions."""
from __future__ import annotations

import re
from pathlib import Path

from duckrec.core.errors import ProjectError, did_you_mean
from duckrec.core.nodes import Project

_DOCS_RE = re.compile(r"\{%-?\s*docs\s+([A-Za-z_]\w*)\s*-?%\}(.*?)\{%-?\s*enddocs\s*-?%\}", re.S)
_DOC_CALL_RE = re.compile(r"""\{\{-?\s*doc\(\s*(['"])([^'"]+)\1\s*\)\s*-?\}\}""")


def read_docs(project: Project) -> None:
    """dbt's docs blocks (`{% docs name %}...{% enddocs %}` in .md files of the project's
    folders), then `{{ doc('name') }}` in every description."""
    seen: set[Path] = set()
    for key in ("models", "sql", "seeds", "macros"):
        base = project.path(key)
        if not base.is_dir():
            continue
        for p in sorted(base.rglob("*.md")):
            if p in seen:
                continue
            seen.add(p)
            text = p.read_text(encoding="utf-8")
            for m in _DOCS_RE.finditer(text):
                name, rel = m.group(1), str(p.relative_to(project.root))
                if name in project.doc_blocks:
                    raise ProjectError(f"docs block {name!r} is defined twice (also in {project.doc_blocks[name][0]})",
                                       path=rel, line=text.count("\n", 0, m.start()) + 1)
                project.doc_blocks[name] = (rel, m.group(2).strip())

    def render(text: str, where: str, path: str) -> str:
        if "doc(" not in text:
            return text

        def sub(m: re.Match) -> str:
            if m.group(2) not in project.doc_blocks:
                raise ProjectError(f"{where}: description uses doc({m.group(2)!r}), which no {{% docs %}} block "
                                   "defines" + did_you_mean(m.group(2), project.doc_blocks), path=path)
            return project.doc_blocks[m.group(2)][1]

        return _DOC_CALL_RE.sub(sub, text)

    for node in project.nodes.values():
        node.description = render(node.description, f"{node.kind} {node.name}", node.path)
        for col in node.columns.values():
            col.description = render(col.description, f"{node.name}.{col.name}", node.path)
    for src in project.sources.values():
        src.description = render(src.description, f"source {src.source_name}.{src.name}", src.path)
