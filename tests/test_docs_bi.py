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


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    ratings = [(u, item, 4.0, T0 + u * DAY + i * 60) for u, items in SEQUENCES.items() for i, item in enumerate(items)]
    project = make_project(tmp_path_factory.mktemp("bi"), ratings, MOVIES, vars={"ks": [3], "k": 3})
    result = build(project)
    assert result.code == 0, result
    c = connect(project)
    yield c
    c.close()


def test_titles_in_natural_order_with_genres_as_text(con):
    titles = dict(rows(con, "select distinct item_id, title || ' | ' || genres from recs.served_recommendations"))
    assert titles[101] == "The Matrix | Action, Sci-Fi"
    assert titles[103] == "L'Auberge espagnole | Comedy"
    assert titles[104] == "The City of Lost Children (Cité des enfants perdus, La) | Fantasy"


def test_plain_reasons_name_the_history_item_with_its_year(con):
    # user 4 watched 106 then 101: markov follows the last item, The Matrix
    served = rows(con, """select strategy, reason from recs.served_recommendations
                          where user_id = 4 and strategy in ('markov', 'popularity', 'item_knn') order by strategy, rank""")
    reasons = {}
    for strategy, reason in served:
        reasons.setdefault(strategy, []).append(reason)
    assert reasons["markov"][0] == "Because you watched The Matrix (1999)"
    assert set(reasons["popularity"]) == {"Popular: one of the most watched titles"}
    assert any(r.startswith("Viewers of ") and r.endswith(" also watched this") for r in reasons["item_knn"]) or \
        set(reasons["item_knn"]) == {"Popular: one of the most watched titles"}
    technical = rows(con, "select reason from recs.recommendations where user_id = 4 and strategy = 'markov' and rank = 1")
    assert technical == [("after Matrix, The",)]


def test_no_reason_is_left_technical(con):
    leftovers = rows(con, """select distinct reason from recs.served_recommendations
                             where reason like 'after %' or reason like 'like %' or reason like 'explore %'
                                or reason = 'popular now' or reason is null""")
    assert leftovers == []


def test_score_is_the_holdout_hit_probability_of_the_rank(con):
    # hand count: hits at rank r of each strategy's holdout lists / evaluated users,
    # ranks pooled 1, 2-3 (K = 3)
    n_users = rows(con, "select count(distinct user_id) from features.event_splits where split = 'test'")[0][0]
    hits = dict(((s, r), n) for s, r, n in rows(con, """
        select h.strategy, h.rank, count(*) from eval.holdout_recommendations h
        join features.event_splits t on t.user_id = h.user_id and t.item_id = h.item_id and t.split = 'test'
        group by all"""))
    for strategy, rank, score in rows(con, "select distinct strategy, rank, score from recs.served_recommendations"):
        bucket = [1] if rank == 1 else [2, 3]
        expected = sum(hits.get((strategy, r), 0) for r in bucket) / (len(bucket) * n_users)
        assert score == pytest.approx(expected, abs=1e-6), (strategy, rank)


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
    assert keys == sorted(keys) and len(keys) == 7


def test_embeddings_in_long_format(con):
    wide = rows(con, "select item_id, embedding from ml.item_embeddings order by item_id limit 1")[0]
    long = rows(con, f"select dimension, value from ml.item_embeddings_long where item_id = {wide[0]} order by dimension")
    assert [d for d, _ in long] == list(range(1, len(wide[1]) + 1))
    assert [v for _, v in long] == pytest.approx(list(wide[1]))
