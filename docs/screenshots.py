"""Redraw the README's pictures of the docs site (docs/img/*.png, also kept in
target/docs/screenshots/) from a built project.

    .venv/bin/duckrec build && .venv/bin/duckrec docs generate && .venv/bin/python docs/screenshots.py

Needs Chromium (Debian package chromium) and playwright (pip install -e '.[test]').
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

SHOTS = [  # (file, page, node to select in the lineage or None)
    ("lineage.png", "index.html", "model.lm_lists"),
    ("strategies.png", "results/strategies.html", None),
    ("exploration.png", "results/exploration.html", None),
    ("segments.png", "results/segments.html", None),
    ("training.png", "results/training.html", None),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project-dir", default=".")
    parser.add_argument("--out", default="docs/img")
    args = parser.parse_args()
    docs = Path(args.project_dir) / "target" / "docs"
    if not (docs / "index.html").exists():
        print(f"no {docs}/index.html: run duckrec docs generate first", file=sys.stderr)
        return 2
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (docs / "screenshots").mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 760})
        for name, rel, select in SHOTS:
            page.goto((docs / rel).resolve().as_uri())
            if select:
                # as it opens: fitted to the window, every layer in view; one node selected
                page.evaluate("id => window.duckrecLineage.select(id)", select)
            page.screenshot(path=str(docs / "screenshots" / name))
            # 256 colours are plenty for flat charts and keep the README's pictures small
            from PIL import Image

            Image.open(docs / "screenshots" / name).convert("RGB").quantize(256).save(out / name, optimize=True)
            print(out / name)
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
