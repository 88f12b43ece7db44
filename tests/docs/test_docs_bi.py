"""What a BI tool sees: comments from the YAML, NOT NULL columns, the served view with titles
and plain reasons, a comparable score, long-format embeddings, ordered metrics."""
from __future__ import annotations

import pytest

from sql_fixtures import DAY, T0, build, connect, make_project, rows

MOVIES = [
    (101, "Matrix, The (1999)", "Action|Sci-Fi"),
    (102, "Heat (1995)", "Action|Crime"),
    (103, "Auberge espagnole, L' (2002)", "Comedy"),
    (104, "City of Lost Children, The (Cité des enfants perdus, La) (1995)", "Fantasy"),
    (105, "Unforgiven (1992)", "Western"),
    (106, "Toy Story (1995)", "Animation|Children"),
]
SEQUENCES = {1: [101, 102, 103], 2: [102, 104, 105], 3: [103, 105, 106], 4: [106, 101], 5: [102, 106, 104]}


PROJECT: dict = {}  # the fixture's project folder


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    ratings = [(u, item, 4.0, T0 + u * DAY + i * 60) for u, items in SEQUENCES.items() for i, item in enumerate(items)]
    project = make_project(tmp_path_factory.mktemp("bi"), ratings, MOVIES, vars={"ks": [3], "k": 3})
    result = build(project)
    assert result.code == 0, result
    PROJECT["root"] = project
    c = connect(project)
    yield c
    c.close()


def test_titles_in_natural_order_with_genres_as_text(con):
    titles = dict(rows(con, "select distinct item_id, title || ' | ' || genres from recs.served_recommendations"))
    assert titles[101] == "The Matrix | Action, Sci-Fi"
    assert titles[103] == "L'Auberge espagnole | Comedy"
    assert titles[104] == "The City of Lost Children (Cité des enfants perdus, La) | Fantasy"


def test_plain_reasons_name_the_history_item_with_its_year(con):
    # user 4 watched 106 then 101: markov follows the last item, The Matrix, to Heat (u1 went
    # 101 -> 102); the two share the genre Action, so the reason says so
    served = rows(con, """select strategy, reason from recs.served_recommendations
                          where user_id = 4 and strategy in ('markov', 'popularity', 'item_knn') order by strategy, rank""")
    reasons = {}
    for strategy, reason in served:
        reasons.setdefault(strategy, []).append(reason)
    assert reasons["markov"][0] == "Like The Matrix (1999), which you rated highly: action"
    # popularity's own reason is generic: it shows where no other strategy explains the item
    # from the user's history, and yields to such a reason where one does
    popular = rows(con, """select p.reason, count(o.strategy) > 0 as also_elsewhere
                           from recs.served_recommendations p
                           left join recs.served_recommendations o
                             on o.user_id = p.user_id and o.item_id = p.item_id and o.strategy <> 'popularity'
                           where p.strategy = 'popularity' group by p.strategy, p.user_id, p.item_id, p.reason""")
    assert {r for r, elsewhere in popular if not elsewhere} <= {"Popular: one of the most watched titles"}
    assert all(r.startswith(("Like ", "Because you watched ", "Viewers of ", "Something different: ", "New in "))
               or r == "Popular: one of the most watched titles" for r, _ in popular)
    # item_knn's "Viewers of X also watched this" (or what the two share), or the reason of a
    # strategy serving the same item
    assert all((r.startswith("Viewers of ") and r.endswith(" also watched this"))
               or r.startswith(("Like ", "Because you watched ", "New in "))
               or r == "Popular: one of the most watched titles" for r in reasons["item_knn"]), reasons["item_knn"]
    technical = rows(con, "select reason from recs.recommendations where user_id = 4 and strategy = 'markov' and rank = 1")
    assert technical == [("after Matrix, The",)]


def test_no_reason_is_left_technical(con):
    leftovers = rows(con, """select distinct reason from recs.served_recommendations
                             where reason like 'after %' or reason like 'like %' or reason like 'explore %'
                                or reason = 'popular now' or reason is null""")
    assert leftovers == []


def _non_increasing_fit(values: list[float], weights: list[float]) -> list[float]:
    """Pool adjacent violators: the closest non-increasing sequence (weighted least squares)."""
    blocks: list[list[float]] = []  # [mean, weight, count]
    for v, w in zip(values, weights):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] < blocks[-1][0]:
            (m1, w1, n1), (m2, w2, n2) = blocks[-2], blocks.pop()
            blocks[-1] = [(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, n1 + n2]
    return [m for m, _, n in blocks for _ in range(n)]


def test_score_is_the_holdout_hit_probability_of_the_rank_never_rising(con):
    # hand count: hits at rank r of each strategy's holdout lists / evaluated users, ranks
    # pooled 1, 2-3 (K = 3), then made non-increasing (a rank-1 bucket below 2-3 is pooled with it)
    n_users = rows(con, "select count(distinct user_id) from features.event_splits where split = 'test'")[0][0]
    hits = dict(((s, r), n) for s, r, n in rows(con, """
        select h.strategy, h.rank, count(*) from eval.holdout_recommendations h
        join features.event_splits t on t.user_id = h.user_id and t.item_id = h.item_id and t.split = 'test'
        group by all"""))
    served = rows(con, "select distinct strategy, rank, score from recs.served_recommendations")
    for strategy in {s for s, _, _ in served}:
        buckets = [[1], [2, 3]]
        pooled = [sum(hits.get((strategy, r), 0) for r in b) / (len(b) * n_users) for b in buckets]
        fit = _non_increasing_fit(pooled, [len(b) * n_users for b in buckets])
        for s, rank, score in served:
            if s == strategy:
                assert score == pytest.approx(fit[0 if rank == 1 else 1], abs=1e-6), (strategy, rank)


def test_the_fit_pools_a_rising_bucket_with_the_one_above():
    # lm_calibrated on the default seeds: rank 1 0.0149, ranks 2-3 0.0216 -> both their weighted mean
    assert _non_increasing_fit([0.0149, 0.0216], [1, 2]) == pytest.approx([0.019367, 0.019367], abs=1e-6)
    assert _non_increasing_fit([0.03, 0.02, 0.025, 0.01], [1, 2, 4, 8]) == pytest.approx(
        [0.03, 0.023333, 0.023333, 0.01], abs=1e-6)


def test_sorting_a_list_by_score_keeps_its_order(con):
    rising = rows(con, """select strategy, user_id, rank from (
                              select *, lag(score) over (partition by strategy, user_id order by rank) as above
                              from recs.served_recommendations) where score > above""")
    assert rising == []


def test_one_reason_per_user_and_item_across_strategies(con):
    shared = rows(con, """select user_id, item_id, count(distinct strategy), count(distinct reason)
                          from recs.served_recommendations group by all having count(distinct strategy) > 1""")
    assert shared, "the fixture should have items that several strategies serve to one user"
    assert all(n_reasons == 1 for _, _, _, n_reasons in shared), shared


def test_descriptions_are_comments_and_never_null_columns_are_not_null(con):
    comments = dict(rows(con, """select schema_name || '.' || table_name, comment from duckdb_tables()
                                 union all select schema_name || '.' || view_name, comment from duckdb_views()
                                 where not internal"""))
    assert comments["eval.metrics"].startswith("The protocol's measures per strategy and K")
    assert comments["recs.served_recommendations"].startswith("For dashboards:")
    assert comments["raw.movies"].startswith("Raw catalogue") and comments["_duckrec.runs"].startswith("One row per")
    columns = {(t, c): (comment, nullable) for t, c, comment, nullable in rows(con, """
        select schema_name || '.' || table_name, column_name, comment, is_nullable from duckdb_columns()""")}
    assert "= hit_rate / K" in columns[("eval.metrics", "precision")][0]
    assert columns[("recs.served_recommendations", "reason")][0].startswith("Why, in plain words")
    assert columns[("staging.events", "user_id")][1] is False          # a not_null test
    assert columns[("eval.metrics", "precision")][1] is True           # no not_null test
    undocumented = rows(con, """
        select t.schema_name || '.' || t.table_name from duckdb_tables() t
        where t.schema_name in ('staging', 'features', 'ml', 'recs', 'eval') and t.comment is null""")
    assert undocumented == []


def test_metrics_come_ordered_by_strategy_and_k(con):
    keys = rows(con, "select strategy, k from eval.metrics")
    assert keys == sorted(keys) and len(keys) == 10  # 10 strategies (lm_neural, new_in_genre, text_knn among them) x one K


def test_the_strategies_page_shows_every_strategy(con, capsys):
    from duckrec.cli import main
    from sql_fixtures import REPO

    (PROJECT["root"] / "reports").symlink_to(REPO / "reports", target_is_directory=True)  # the project's pages
    assert main(["docs", "generate", "--project-dir", str(PROJECT["root"])]) == 0, capsys.readouterr()
    page = (PROJECT["root"] / "target" / "docs" / "results" / "strategies.html").read_text(encoding="utf-8")
    for (strategy,) in rows(con, "select distinct strategy from eval.metrics"):
        assert f">{strategy}<" in page, strategy
    assert ">text_knn<" in page


def test_embeddings_in_long_format(con):
    wide = rows(con, "select item_id, embedding from ml.item_embeddings order by item_id limit 1")[0]
    long = rows(con, f"select dimension, value from ml.item_embeddings_long where item_id = {wide[0]} order by dimension")
    assert [d for d, _ in long] == list(range(1, len(wide[1]) + 1))
    assert [v for _, v in long] == pytest.approx(list(wide[1]))


def _data_test_rows(name: str, ref: str, table_sql: str) -> list[tuple]:
    """A singular data test of the project, compiled as a build compiles it (macros, refs), run
    against a hand-made table in place of `ref`."""
    import duckdb
    from pathlib import Path

    from duckrec.parser.project import load_project
    from duckrec.render.renderer import Renderer

    from duckrec import graph

    project = load_project(Path(__file__).resolve().parents[2])
    graph.link(project)
    sql = Renderer(project, project.default_target).compile(project.nodes[f"test.{name}"])
    sql = sql.replace(project.by_name(ref).relation, "given")
    con = duckdb.connect()
    con.execute(f"create table given as {table_sql}")
    return con.execute(sql).fetchall()


def test_the_data_tests_catch_a_rising_score_and_two_reasons_for_one_item():
    served = """select * from (values ('lm', 1, 1, 10, 'Because you watched Heat (1995)', 0.01),
                                      ('lm', 1, 2, 11, 'Popular: one of the most watched titles', 0.02),
                                      ('markov', 1, 1, 10, 'Because you watched Up (2009)', 0.03))
                t(strategy, user_id, rank, item_id, reason, score)"""
    assert [(s, u, r) for s, u, r, *_ in _data_test_rows("served_score_never_rises_with_rank",
                                                         "served_recommendations", served)] == [("lm", 1, 2)]
    assert [(u, i, n) for u, i, n, _ in _data_test_rows("served_one_reason_per_user_item",
                                                        "served_recommendations", served)] == [(1, 10, 2)]


def test_the_history_data_test_catches_a_repeated_point():
    history = """select * from (values ('r1', timestamp '2024-01-01', null, null, 'lm', 10, 0.08, 0.2),
                                       ('r2', timestamp '2024-01-02', null, null, 'lm', 10, 0.08, 0.2),
                                       ('r3', timestamp '2024-01-03', null, null, 'lm', 10, 0.09, 0.2))
                 t(run_id, built_at, data_watermark, checkpoint_id, strategy, k, ndcg, coverage)"""
    repeated = _data_test_rows("metrics_history_no_repeated_point", "metrics_history", history)
    assert [(run, previous) for run, previous, *_ in repeated] == [("r2", "r1")]
