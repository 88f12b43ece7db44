"""`duckrec://` (SQLAlchemy + duckdb-engine, pooled) on the published warehouse: held
connections, new checkouts and pandas see each publish from their next query on; one query
never reads two builds; reflection works on this SQLAlchemy and on the other minor release."""
from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

sa = pytest.importorskip("sqlalchemy")
pytest.importorskip("duckdb_engine")

from bi_fixtures import bi_project, publish  # noqa: E402
from engine_fixtures import warehouse  # noqa: E402
from duckrec.bi.dialect import register  # noqa: E402

register()  # the entry point does this once duckrec is pip-installed; a source checkout may not be

# one query over two relations that each carry the build id: equal unless it mixed two builds
MIXED = ("select (select max(build_id) from main.build_info) as info, "
         "(select max(build_id) from recs.served_recommendations) as served")


def _engine(root: Path):
    return sa.create_engine(f"duckrec:///{warehouse(root)}", pool_size=2, max_overflow=0)


def test_held_connections_new_checkouts_and_pandas_see_each_publish_from_the_next_query(
        tmp_path, tmp_path_factory, capsys):
    import pandas as pd

    root = bi_project(tmp_path, tmp_path_factory)
    engine = _engine(root)
    with engine.connect() as held:
        assert held.execute(sa.text(MIXED)).one() == (1, 1)
        for build in (2, 3):
            publish(capsys, root, build)
            assert held.execute(sa.text(MIXED)).one() == (build, build)  # same connection, same transaction
            with engine.connect() as other:  # a checkout from the same pool
                assert other.execute(sa.text("select build_id from build_info")).scalar() == build
            frame = pd.read_sql("select user_id, build_id from recs.served_recommendations", engine)
            assert set(frame["build_id"]) == {build} and len(frame) == 6
    engine.dispose()


def test_the_engine_is_read_only_and_names_a_missing_warehouse(tmp_path, tmp_path_factory):
    root = bi_project(tmp_path, tmp_path_factory)
    engine = _engine(root)
    with engine.connect() as conn:
        with pytest.raises(sa.exc.DBAPIError, match="read-only|disabled by configuration"):
            conn.execute(sa.text("create table main.mine as select 1 as x"))
        conn.rollback()
        with pytest.raises(sa.exc.DBAPIError, match="disabled by configuration"):
            conn.execute(sa.text(f"copy (select 1) to '{tmp_path}/out.csv'"))
    engine.dispose()
    missing = sa.create_engine(f"duckrec:///{tmp_path}/nowhere/warehouse.duckdb")
    with pytest.raises(Exception, match="no warehouse here yet"):
        missing.connect()


def test_reflection_reads_types_nullability_and_comments(tmp_path, tmp_path_factory):
    root = bi_project(tmp_path, tmp_path_factory)
    engine = _engine(root)
    found = _reflect(engine)
    engine.dispose()
    assert found == EXPECTED_REFLECTION


def _reflect(engine):  # its source runs under the other SQLAlchemy release too: keep it self-contained
    insp = sa.inspect(engine)
    columns = insp.get_columns("served_recommendations", schema="recs")
    table = sa.Table("recommendations", sa.MetaData(), schema="recs", autoload_with=engine)
    return {
        "schemas": [s for s in insp.get_schema_names() if s in ("main", "raw", "recs")],
        "tables": insp.get_table_names(schema="recs"),
        "views": insp.get_view_names(schema="recs"),
        "columns": [[c["name"], type(c["type"]).__name__, c["nullable"], c["comment"]] for c in columns],
        "comment": insp.get_table_comment("served_recommendations", schema="recs")["text"],
        "autoload": [c.name for c in table.columns],
    }



EXPECTED_REFLECTION = {
    "schemas": ["main", "raw", "recs"],
    "tables": ["recommendations"],
    "views": ["served_recommendations"],
    "columns": [["user_id", "BigInteger", True, "The user the list is for."],
                ["rank", "BigInteger", True, "Position in the list, 1 first."],
                ["item_id", "BigInteger", True, None],
                ["title", "String", True, "The title in natural order."],
                ["build_id", "Integer", True, "The build that wrote this row."]],
    "comment": "Recommendations for dashboards, one row per user and rank.",
    "autoload": ["user_id", "rank", "item_id", "build_id"],
}


def _other_sqlalchemy(cache: Path) -> tuple[str, Path]:
    """The SQLAlchemy minor release beside the installed one, pip-installed once into a cache
    folder (kept across runs, so only the first run needs the network)."""
    installed = tuple(int(p) for p in sa.__version__.split(".")[:2])
    spec = "sqlalchemy>=2.0,<2.1" if installed >= (2, 1) else "sqlalchemy>=2.1,<2.2"
    target = cache / spec.replace(">=", "-").replace(",<", "-")
    if not (target / "sqlalchemy").is_dir():
        done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                               spec], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            pytest.skip(f"cannot install {spec} (offline?): {done.stderr.strip()[-300:]}")
    return spec, target


def test_reflection_works_the_same_on_the_other_sqlalchemy_minor_release(tmp_path, tmp_path_factory):
    root = bi_project(tmp_path, tmp_path_factory)
    cache = Path(os.environ.get("DUCKREC_TEST_CACHE", Path.home() / ".cache" / "duckrec-tests"))
    spec, target = _other_sqlalchemy(cache)
    src = Path(__file__).resolve().parents[2] / "src"
    script = textwrap.dedent("""
        import json, sys
        import sqlalchemy as sa
        from duckrec.bi.dialect import register
        register()
        """) + inspect.getsource(_reflect) + textwrap.dedent(f"""
        engine = sa.create_engine("duckrec:///{warehouse(root)}")
        print(json.dumps({{"version": sa.__version__, "found": _reflect(engine)}}))
        """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(src)])}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["version"] != sa.__version__ and result["version"][:3] != sa.__version__[:3], (spec, result)
    assert result["found"] == EXPECTED_REFLECTION


def test_the_dialect_is_registered_by_an_entry_point():
    import tomllib
    from importlib.metadata import distribution

    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    declared = pyproject["project"]["entry-points"]["sqlalchemy.dialects"]
    assert declared == {"duckrec": "duckrec.bi.dialect:DuckrecDialect"}
    installed = distribution("duckrec")
    origin = json.loads(installed.read_text("direct_url.json") or "{}").get("url", "")
    here = Path(__file__).resolve().parents[2]
    if origin.startswith("file://") and Path(origin[len("file://"):]).resolve() != here:
        pytest.skip(f"the installed duckrec was installed from {origin}, not this checkout: its entry points are "
                    "that checkout's")
    points = {e.name: e.value for e in installed.entry_points if e.group == "sqlalchemy.dialects"}
    assert points.get("duckrec") == "duckrec.bi.dialect:DuckrecDialect"
