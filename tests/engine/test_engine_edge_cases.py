"""Edge cases found in review: each once broke a build, lost work or misled the user."""
from engine_fixtures import project, query, run, warehouse

TRACEBACK = "Traceback (most recent call last)"
BASE = {
    "project.yml": """
        name: edge
        models: {+materialized: table}
        vars: {lm: {epochs: 10, candidates: 100}}
    """,
    "seeds/nums.csv": "id,name\n1,a\n2,b\n",
    "sql/a.sql": "select id, name from {{ ref('nums') }}",
}


def test_a_python_model_whose_lazy_frame_fails_is_one_failed_node(tmp_path, capsys):
    root = project(tmp_path, {
        "python_models/lazy.py": """
            import polars as pl

            def model(dbt, session):
                return dbt.ref("a").pl().lazy().with_columns(pl.col("name").cast(pl.Int64))
        """,
    }, base=BASE)
    result = run(capsys, root, "build", "--publish-partial")
    assert result.code == 1
    assert "Python model lazy raised" in result.out and TRACEBACK not in result.out.split("lazy raised")[0]
    assert query(warehouse(root), "select count(*) from main.a") == [(2,)]  # the rest was published


def test_a_relationships_test_pointing_downstream_keeps_the_other_gates(tmp_path, capsys):
    root = project(tmp_path, {
        "sql/a.sql": "select 1 as id union all select null",
        "sql/b.sql": "select id from {{ ref('a') }}",
        "sql/c.sql": "select id from {{ ref('a') }}",
        "models/a.yml": """
            version: 2
            models:
              - name: a
                columns:
                  - name: id
                    data_tests:
                      - not_null
                      - relationships: {to: ref('b'), field: id}
        """,
    }, base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 1
    skipped = [line for line in result.out.splitlines() if " SKIP " in line]
    # b and c wait for a's not_null test; the relationships test waits for b
    assert any('"main"."b"' in line for line in skipped) and any('"main"."c"' in line for line in skipped)
    assert any("relationships_a_id" in line for line in skipped)


def test_exclude_takes_the_excluded_models_tests_with_it(tmp_path, capsys):
    root = project(tmp_path, {
        "models/a.yml": """
            version: 2
            models:
              - name: a
                columns:
                  - {name: id, data_tests: [unique]}
        """,
    }, base=BASE)
    result = run(capsys, root, "ls", "--exclude", "a")
    assert "unique_a_id" not in result.out and "raw.nums" in result.out


def test_clean_refuses_a_target_that_is_not_inside_the_project(tmp_path, capsys):
    root = project(tmp_path, {"project.yml": "name: edge\npaths: {target: .}\n"}, base=BASE)
    result = run(capsys, root, "clean")
    assert result.code == 2 and "clean removes only such a folder" in result.err
    assert (root / "project.yml").exists()


def test_a_misspelt_seed_config_is_an_error(tmp_path, capsys):
    root = project(tmp_path, {"project.yml": "name: edge\nseeds:\n  nums:\n    +colum_types: {id: VARCHAR}\n"},
                   base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 2 and "unknown config seeds.nums.+colum_types" in result.err


def test_a_unique_key_that_is_not_a_column_says_so(tmp_path, capsys):
    root = project(tmp_path, {
        "sql/inc.sql": "{{ config(materialized='incremental', unique_key='idd') }}\nselect id from {{ ref('a') }}",
    }, base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 1 and "unique_key ['idd'] is not a column of the model's result" in result.out


def test_vars_override_nested_settings_key_by_key(tmp_path, capsys):
    root = project(tmp_path, {"sql/v.sql": "select {{ var('lm')['candidates'] }} as c, {{ var('lm')['epochs'] }} as e"},
                   base=BASE)
    assert run(capsys, root, "build", "--vars", "{lm: {epochs: 2}}").code == 0
    assert query(warehouse(root), "select c, e from main.v") == [(100, 2)]


def test_singular_tests_take_severity_in_any_case_and_a_trailing_comment(tmp_path, capsys):
    root = project(tmp_path, {
        "tests/data_tests/warns.sql": "{{ config(severity='WARN') }}\nselect * from {{ ref('a') }}; -- all rows",
        "tests/data_tests/passes.sql": "select * from {{ ref('a') }} where id < 0; -- none expected\n",
    }, base=BASE)
    result = run(capsys, root, "build")
    assert result.code == 0, result
    assert "WARN  test warns" in result.out and "PASS  test passes" in result.out


def test_incremental_strategy_append_keeps_every_row_even_with_a_key(tmp_path, capsys):
    root = project(tmp_path, {
        "sql/log.sql": "{{ config(materialized='incremental', unique_key='id', incremental_strategy='append') }}\n"
                       "select id, name from {{ ref('a') }}",
    }, base=BASE)
    assert run(capsys, root, "build").code == 0
    # a new row upstream (an unchanged input is reused, not appended again)
    (root / "seeds/nums.csv").write_text("id,name\n1,a\n2,b\n3,c\n")
    assert run(capsys, root, "build").code == 0
    assert query(warehouse(root), "select count(*), count(distinct id) from main.log") == [(5, 3)]
    bad = project(tmp_path / "bad", {
        "sql/log.sql": "{{ config(materialized='incremental', incremental_strategy='merge') }}\nselect 1 as id",
    }, base=BASE)
    result = run(capsys, bad, "build")
    assert result.code == 2 and "expected 'append' or 'delete+insert'" in result.err
