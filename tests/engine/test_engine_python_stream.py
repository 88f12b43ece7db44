"""Python models that stream their result: an iterator of frames, written as it is pulled."""
from __future__ import annotations

from engine_fixtures import TRACEBACK, project, query, run, warehouse

BASE = {
    "project.yml": """
        name: stream_shop
        targets: {dev: {warehouse: warehouse.duckdb}}
        vars: {fail_at: null}
    """,
    "seeds/items.csv": "item_id,price\n1,10\n2,20\n3,30\n4,40\n5,50\n",
}

STREAMED = """
    import polars as pl
    import pyarrow as pa

    def model(dbt, session):
        dbt.config(materialized="table")
        fail_at = dbt.var("fail_at")
        for lo in range(0, 6, 2):
            if lo == fail_at:
                raise_here(lo)
            # each block is read while the table is being written (the model's own cursor)
            block = dbt.ref("items").filter(f"item_id > {lo} and item_id <= {lo + 2}").pl()
            frame = block.with_columns((pl.col("price") * 2).alias("doubled"), pl.lit(lo).alias("block"))
            yield frame.to_arrow() if lo == 2 else frame  # frames and Arrow tables mix

    def raise_here(lo):
        raise RuntimeError(f"block {lo} is bad")
"""


def test_a_generator_of_frames_becomes_one_table(tmp_path, capsys):
    root = project(tmp_path, {"python_models/streamed.py": STREAMED}, base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 0, result
    assert query(warehouse(root), "select item_id, doubled, block from main.streamed order by 1") == [
        (1, 20, 0), (2, 40, 0), (3, 60, 2), (4, 80, 2), (5, 100, 4)]


def test_an_exception_while_streaming_is_the_models_and_keeps_the_old_table(tmp_path, capsys):
    root = project(tmp_path, {"python_models/streamed.py": STREAMED}, base=BASE)
    assert run(capsys, root, "build").code == 0
    result = run(capsys, root, "build", "--vars", "{fail_at: 2}")
    assert result.code == 1
    assert "streamed raised RuntimeError: block 2 is bad" in result.out
    assert "python_models/streamed.py" in result.out and "in raise_here" in result.out
    assert "runner.py" not in result.text and TRACEBACK not in result.text
    # the first block was already written when the second failed: the old table stays whole
    assert query(warehouse(root), "select count(*) from main.streamed") == [(5,)]


def test_a_stream_without_frames_or_with_other_columns_is_a_clear_error(tmp_path, capsys):
    root = project(tmp_path, {
        "python_models/empty_stream.py": """
            def model(dbt, session):
                dbt.ref("items")
                return iter([])
        """,
        "python_models/changing.py": """
            import polars as pl

            def model(dbt, session):
                dbt.ref("items")
                yield pl.DataFrame({"a": [1]})
                yield pl.DataFrame({"b": ["x"]})
        """,
    }, base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 1
    assert "empty_stream returned an iterator without a frame" in result.out
    assert "changing raised TypeError" in result.out and "['b']" in result.out and "['a']" in result.out
