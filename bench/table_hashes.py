"""Order-independent fingerprints of every public table and view of a warehouse.

Used to check that a refactor leaves a default build bit-identical:

    .venv/bin/python bench/table_hashes.py warehouse.duckdb > before.json
    ... change code, rebuild with --full-refresh ...
    .venv/bin/python bench/table_hashes.py warehouse.duckdb > after.json
    .venv/bin/python bench/table_hashes.py --compare before.json after.json

Each relation of the schemas below is summarised by its column names and types (in
order), its row count, and the sum (as HUGEINT, so duplicate rows count) of DuckDB's
``hash()`` of every whole row. Doubles are hashed by value, so any bit change in a
score shows. Columns listed in VOLATILE (wall-clock stamps) are left out of the row
hash; their names and types still count.
"""
import json
import sys

import duckdb

SCHEMAS = ("raw", "staging", "features", "ml", "recs", "eval")
# columns that record when or how fast something ran, not what it computed:
# ml.lm_checkpoints.trained_at, ml.lm_training_log.trained_at/seconds,
# eval.metrics_history.run_id/built_at, ml.item_text_embeddings.encoded_at
VOLATILE = {"trained_at", "built_at", "run_id", "seconds", "encoded_at"}
# ml.lm_checkpoints.history: per-epoch records with train_seconds etc.
TIMED_JSON = {"history"}


def _value(column):
    if column in TIMED_JSON:
        return f"""regexp_replace("{column}"::varchar, '"[a-z_]*seconds": *[-0-9.eE+]+,? *', '', 'g')"""
    return f'"{column}"'


def relation_hashes(path):
    con = duckdb.connect(path, read_only=True)
    out = {}
    rels = con.execute(
        "SELECT table_schema, table_name, table_type FROM information_schema.tables"
        " WHERE table_schema IN (SELECT unnest(?)) ORDER BY 1, 2", [list(SCHEMAS)]
    ).fetchall()
    for schema, name, kind in rels:
        cols = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [schema, name],
        ).fetchall()
        kept = [c for c, _ in cols if c not in VOLATILE]
        rel = f'"{schema}"."{name}"'
        if kept:
            row = "struct_pack(" + ", ".join(f'"{c}" := {_value(c)}' for c in kept) + ")"
            n, h = con.execute(
                f"SELECT count(*), coalesce(sum(hash({row})::HUGEINT), 0)::VARCHAR FROM {rel}"
            ).fetchone()
        else:
            n, h = con.execute(f"SELECT count(*), '0' FROM {rel}").fetchone()
        out[f"{schema}.{name}"] = {
            "kind": kind,
            "columns": [f"{c} {t}" for c, t in cols],
            "volatile_left_out": [c for c, _ in cols if c in VOLATILE],
            "rows": n,
            "row_hash_sum": h,
        }
    con.close()
    return out


def compare(before, after):
    a, b = json.load(open(before)), json.load(open(after))
    diff = 0
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            diff += 1
            print(f"DIFFERS {key}: {a.get(key)} -> {b.get(key)}")
    print(f"{len(set(a) | set(b))} relations compared, {diff} differ")
    return 1 if diff else 0


if __name__ == "__main__":
    if sys.argv[1] == "--compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    json.dump(relation_hashes(sys.argv[1]), sys.stdout, indent=1, sort_keys=True)
    print()
