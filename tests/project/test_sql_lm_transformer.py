"""A build with lm.cell transformer, end to end on a generated dataset: checkpoint, candidates,
MC dropout, embeddings, the lm and lm_neural lists and the training log's neural columns."""
from __future__ import annotations

from sql_fixtures import TINY_LM, build, connect, generated_dataset, make_project, rows


def test_transformer_cell_builds_every_lm_table(tmp_path):
    ratings, movies, tags = generated_dataset()
    lm = {**TINY_LM, "cell": "transformer", "layers": 2, "heads": 2, "lr": 0.005, "epochs": 2}
    project = make_project(tmp_path, ratings, movies, tags, vars={"lm": lm})
    result = build(project)
    assert result.code == 0, result
    assert " FAIL " not in result.out and " ERROR " not in result.out
    with connect(project) as con:
        config = rows(con, "select config::json ->> '$.model.cell', (config::json ->> '$.model.max_len')::int "
                           "from ml.lm_checkpoints")
        assert config[0][0] == "transformer" and config[0][1] >= 8
        log = rows(con, "select count(*), count(valid_ndcg_neural), count(valid_hit_rate_neural), "
                        "count(mixture_weight) from ml.lm_training_log")
        assert log[0][0] >= 1 and log[0][0] == log[0][1] == log[0][2] == log[0][3]
        strategies = rows(con, "select distinct strategy from eval.metrics where strategy like 'lm%' order by 1")
        assert ("lm_neural",) in strategies and ("lm",) in strategies
        # lm_neural is the sequence model's own ranking: never an item of the user's history
        assert rows(con, """select count(*) from recs.lm_neural_lists l join features.fit_events f
                            using (purpose, user_id, item_id)""") == [(0,)]
        weight = rows(con, "select (config::json ->> '$.mixture.rnn_weight')::double from ml.lm_checkpoints")[0][0]
        spread = rows(con, "select count(*) > 0, count(*) filter (where mc_std > 0) > 0 "
                           "from recs.lm_candidate_uncertainty")
        assert spread == [(True, weight > 0)]  # MC dropout through the transformer
        assert rows(con, "select count(*) > 0 from ml.user_embeddings") == [(True,)]
