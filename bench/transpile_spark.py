"""How many of the project's SQL models transpile to Spark SQL unchanged, with sqlglot.

    duckrec compile && python bench/transpile_spark.py [--compiled target/compiled] [--dialect spark]

Reads every compiled SQL model (Jinja already rendered; tests left out) and transpiles it
from DuckDB's dialect with ``unsupported_level=RAISE``: a model counts as transpiled
when sqlglot parses it and writes it without an unsupported construct. It prints the
count and, for each model that does not, the first reason. sqlglot is not a duckrec
dependency: ``pip install sqlglot`` first.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import sqlglot
from sqlglot.errors import ErrorLevel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compiled", type=Path, default=Path("target/compiled"))
    ap.add_argument("--dialect", default="spark")
    args = ap.parse_args()
    files = sorted(p for p in args.compiled.rglob("*.sql") if "tests" not in p.relative_to(args.compiled).parts)
    ok, failed = [], []
    for path in files:
        try:
            sqlglot.transpile(path.read_text(), read="duckdb", write=args.dialect, unsupported_level=ErrorLevel.RAISE)
            ok.append(path)
        except Exception as e:  # noqa: BLE001 - sqlglot raises ParseError, UnsupportedError, ...
            failed.append((path, f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"))
    print(f"sqlglot {sqlglot.__version__}: {len(ok)} of {len(files)} SQL models transpile to {args.dialect} unchanged")
    for path, reason in failed:
        print(f"  {path.relative_to(args.compiled)}: {reason}")


if __name__ == "__main__":
    main()
