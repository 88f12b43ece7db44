"""Fingerprints: a build reuses what did not change, rebuilds what did, and says which."""
from __future__ import annotations

from engine_fixtures import JAFFLE, built_copy, query, run, warehouse


def _statuses(root) -> dict[str, str]:
    rows = query(warehouse(root), """
        select name, status from _duckrec.node_runs
        where run_id = (select run_id from _duckrec.runs order by started_at desc limit 1)""")
    return dict(rows)


def test_second_build_reuses_every_node(tmp_path, tmp_path_factory, capsys):
    root = built_copy(tmp_path, JAFFLE, tmp_path_factory.mktemp("jaffle"))
    r = run(capsys, root, "build")
    assert r.code == 0, r
    statuses = _statuses(root)
    assert set(statuses.values()) == {"reused"}, statuses
    assert "REUSE" in r.out and f"0 ok, {len(statuses)} reused." in r.out, r.out
    # the tables are still there, with their rows
    assert query(warehouse(root), "select count(*) from marts.orders") == [(4,)]


def test_changed_seed_rebuilds_it_and_what_depends_on_it_only(tmp_path, tmp_path_factory, capsys):
    root = built_copy(tmp_path, JAFFLE, tmp_path_factory.mktemp("jaffle"))
    with open(root / "seeds/raw_orders.csv", "a") as f:
        f.write("5,2,2018-01-06,placed,3.00\n")
    assert run(capsys, root, "build").code == 0
    s = _statuses(root)
    assert s["raw_orders"] == "success" and s["orders"] == "success" and s["customers"] == "success"
    assert s["raw_customers"] == "reused" and s["stg_payments"] == "reused"
    assert query(warehouse(root), "select count(*) from marts.orders") == [(5,)]


def test_changed_var_rebuilds_the_models_that_read_it(tmp_path, tmp_path_factory, capsys):
    root = built_copy(tmp_path, JAFFLE, tmp_path_factory.mktemp("jaffle"))
    assert run(capsys, root, "build", "--vars", "{min_amount: 6}").code == 0
    s = _statuses(root)
    assert s["stg_orders"] == "success" and s["orders"] == "success"
    assert s["stg_payments"] == "reused"
    assert query(warehouse(root), "select count(*) from marts.orders") == [(3,)]


def test_changed_macro_rebuilds_its_users(tmp_path, tmp_path_factory, capsys):
    root = built_copy(tmp_path, JAFFLE, tmp_path_factory.mktemp("jaffle"))
    (root / "sql/macros/money.sql").write_text(
        "{% macro cents_to_dollars(col) %}({{ col }} / 1000)::decimal(16, 2){% endmacro %}\n")
    assert run(capsys, root, "build").code == 0
    s = _statuses(root)
    assert s["stg_payments"] == "success" and s["stg_orders"] == "reused"


def test_full_refresh_rebuilds_everything(tmp_path, tmp_path_factory, capsys):
    root = built_copy(tmp_path, JAFFLE, tmp_path_factory.mktemp("jaffle"))
    assert run(capsys, root, "build", "--full-refresh").code == 0
    assert "reused" not in set(_statuses(root).values())


def test_dropped_table_is_rebuilt_even_with_an_equal_fingerprint(tmp_path, tmp_path_factory, capsys):
    import duckdb

    root = built_copy(tmp_path, JAFFLE, tmp_path_factory.mktemp("jaffle"))
    con = duckdb.connect(str(warehouse(root)))
    con.execute("drop table marts.customers")
    con.close()
    assert run(capsys, root, "build").code == 0
    assert _statuses(root)["customers"] == "success"
    assert query(warehouse(root), "select count(*) from marts.customers") == [(3,)]


def test_failed_node_is_not_reused_next_time(tmp_path, tmp_path_factory, capsys):
    root = built_copy(tmp_path, JAFFLE, tmp_path_factory.mktemp("jaffle"))
    good = (root / "sql/marts/customers.sql").read_text()
    (root / "sql/marts/customers.sql").write_text(good.replace("count(o.order_id)", "count(o.no_such_column)"))
    assert run(capsys, root, "build", "--publish-partial").code == 1
    (root / "sql/marts/customers.sql").write_text(good)
    assert run(capsys, root, "build").code == 0
    assert _statuses(root)["customers"] == "success"


def test_a_failed_build_publishes_no_state_so_reverting_the_code_reuses_the_published_table(
        tmp_path, tmp_path_factory, capsys):
    root = built_copy(tmp_path, JAFFLE, tmp_path_factory.mktemp("jaffle"))
    good = (root / "sql/marts/customers.sql").read_text()
    (root / "sql/marts/customers.sql").write_text(good.replace("count(o.order_id)", "count(o.no_such_column)"))
    assert run(capsys, root, "build").code == 1  # all or nothing: the good build's tables and state stay
    (root / "sql/marts/customers.sql").write_text(good)
    assert run(capsys, root, "build").code == 0
    assert _statuses(root)["customers"] == "reused"
    assert query(warehouse(root), "select count(*) from marts.customers") == [(3,)]


def test_state_modified_selects_changed_models_and_their_children(tmp_path, tmp_path_factory, capsys):
    root = built_copy(tmp_path, JAFFLE, tmp_path_factory.mktemp("jaffle"))
    path = root / "sql/staging/stg_customers.sql"
    path.write_text(path.read_text().replace("first_name,", "upper(first_name) as first_name,"))
    r = run(capsys, root, "ls", "--resource-type", "model", "-s", "state:modified")
    assert r.code == 0, r
    assert r.out.split() == ["staging.stg_customers"]
    r = run(capsys, root, "ls", "--resource-type", "model", "-s", "state:modified+")
    assert set(r.out.split()) == {"staging.stg_customers", "marts.customers", "main.customer_summary"}, r.out


def test_a_history_model_appends_every_build_and_survives_full_refresh(tmp_path, capsys):
    from engine_fixtures import project

    root = project(tmp_path, {
        "seeds/n.csv": "id\n1\n2\n",
        "sql/history.sql": "{{ config(materialized='incremental', full_refresh=False) }}\n"
                           "select '{{ invocation_id }}' as run_id, '{{ run_started_at }}'::timestamp as built_at, "
                           "count(*) as n from {{ ref('n') }}",
    })
    for args in (["build"], ["build"], ["build", "--full-refresh"]):
        assert run(capsys, root, *args).code == 0
    rows = query(warehouse(root), "select count(distinct run_id), count(*), min(n) from main.history")
    assert rows == [(3, 3, 2)]
    # its run_id is the build's, as _duckrec.runs records it
    assert query(warehouse(root), "select count(*) from main.history join _duckrec.runs using (run_id)") == [(3,)]


def test_an_empty_build_is_never_reused(tmp_path, tmp_path_factory, capsys):
    root = built_copy(tmp_path, JAFFLE, tmp_path_factory.mktemp("jaffle"))
    assert run(capsys, root, "build", "--empty").code == 0
    assert query(warehouse(root), "select count(*) from marts.orders") == [(0,)]
    assert run(capsys, root, "build").code == 0
    assert _statuses(root)["orders"] == "success"
    assert query(warehouse(root), "select count(*) from marts.orders") == [(4,)]


def test_a_tag_or_description_edit_rebuilds_nothing_and_refreshes_the_comments(tmp_path, tmp_path_factory,
                                                                              capsys):
    root = built_copy(tmp_path, JAFFLE, tmp_path_factory.mktemp("jaffle"))
    schema = root / "models/schema.yml"
    text = schema.read_text()
    assert "    description: one row per customer\n" in text
    schema.write_text(text.replace(
        "    description: one row per customer\n",
        "    description: one row per customer, with their lifetime value\n"
        "    config: {tags: [finance], meta: {owner: ana}, persist_docs: {relation: true}}\n"))
    r = run(capsys, root, "build")
    assert r.code == 0, r
    statuses = _statuses(root)
    assert set(statuses.values()) == {"reused"}, statuses
    assert query(warehouse(root), "select comment from duckdb_tables() where table_name = 'customers'") == [
        ("one row per customer, with their lifetime value",)]
    # the new tag selects it, and the next build has nothing to refresh
    assert "customers" in run(capsys, root, "ls", "-s", "tag:finance").out
    assert run(capsys, root, "build").code == 0 and set(_statuses(root).values()) == {"reused"}


def test_a_parent_whose_state_was_lost_counts_as_absent(tmp_path, capsys):
    """P fails under --publish-partial, is fixed, then its child is built alone: the child
    must not be stored as if built from the fixed P (it read the old table)."""
    from engine_fixtures import project

    root = project(tmp_path, {"sql/p.sql": "select 1 as x", "sql/c.sql": "select x * 10 as y from {{ ref('p') }}",
                              "project.yml": "name: t\ntargets:\n  dev: {warehouse: warehouse.duckdb}\n"
                                             "models:\n  +materialized: table\n"})
    assert run(capsys, root, "build").code == 0
    (root / "sql/p.sql").write_text("select error('boom') as x")
    assert run(capsys, root, "build", "-s", "p", "--publish-partial").code == 1
    (root / "sql/p.sql").write_text("select 2 as x")
    assert run(capsys, root, "build", "-s", "c").code == 0
    assert run(capsys, root, "build", "-s", "p", "c").code == 0
    assert query(warehouse(root), "select y from main.c") == [(20,)]


def test_a_table_written_outside_a_build_is_rebuilt(tmp_path, tmp_path_factory, capsys):
    root = built_copy(tmp_path, JAFFLE, tmp_path_factory.mktemp("jaffle"))
    (root / "sql/macros/ops.sql").write_text("{% macro clobber() %}delete from marts.orders{% endmacro %}")
    assert run(capsys, root, "run-operation", "clobber").code == 0
    assert run(capsys, root, "build").code == 0
    statuses = _statuses(root)
    assert statuses["orders"] == "success" and statuses["stg_orders"] == "reused", statuses
    assert query(warehouse(root), "select count(*) from marts.orders") == [(4,)]


def test_state_selection_on_an_unreadable_warehouse_is_an_error(tmp_path, tmp_path_factory, capsys):
    root = built_copy(tmp_path, JAFFLE, tmp_path_factory.mktemp("jaffle"))
    warehouse(root).write_bytes(b"not a database" * 100)
    r = run(capsys, root, "ls", "-s", "state:modified")
    assert r.code == 4, r
    assert "warehouse.duckdb" in r.text and "cannot be read" in r.text


def test_a_python_model_counts_the_duckrec_packages_it_imports_by_their_source(tmp_path):
    # the duckrec code a Python model runs is part of its definition: an edit to
    # duckrec/ml/rerank must rebuild a model that imports it (after the engine moved into
    # layers, every duckrec import was hashed as duckrec/state, so such edits were reused)
    from duckrec.state.fingerprint import DUCKREC_FOLDER, CodeClosure, tree_hash

    class Project:
        root = tmp_path

        def path(self, name):
            return tmp_path / name

    closure = CodeClosure(Project()).of_code("from duckrec.ml import rerank\nfrom duckrec.ml.score import top_k\n")
    packages = {k: v for k, v in closure.items() if k.startswith("package ")}
    assert packages == {
        "package duckrec/ml": tree_hash(DUCKREC_FOLDER / "ml"),
        "package duckrec/ml/rerank": tree_hash(DUCKREC_FOLDER / "ml" / "rerank"),
    }
    assert (DUCKREC_FOLDER / "ml" / "rerank" / "explore_frames.py").is_file()
    assert "dist torch" in closure
