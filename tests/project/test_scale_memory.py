"""Scale: scoring in bounded blocks, sampled validation and softmax on big catalogues,
thread counts that follow the host, target connection settings, the event generator."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest
import torch  # noqa: F401 - torch loaded first, as in a build

from duckrec.ml import TrainConfig, build_catalogue, top_k, train_lm
from duckrec.ml import score as score_module
from duckrec.ml import train as train_module
from duckrec.ml.ngram import fit_bigram, next_item_probs
from duckrec.ml.score import rnn_probs, score_candidates_mc, score_rows, user_states
from duckrec.ml.threads import CoreMeter, allowed_cpus, pick_threads
from duckrec.ml.train import softmax_negatives
from sql_fixtures import build, generated_dataset, make_project

REPO = Path(__file__).resolve().parents[2]
TINY = dict(embedding_dim=8, hidden_dim=16, dropout=0.0, batch_size=8, window=8, epochs=2, threads=1,
            matmul_dtype="float32")


def random_data(n_items=40, n_users=30, seed=0):
    rng = np.random.default_rng(seed)
    cat = build_catalogue(np.arange(1, n_items + 1))
    seqs = [rng.integers(1, n_items + 1, rng.integers(3, 20)) for _ in range(n_users)]
    return cat, seqs


def test_ngram_probabilities_on_a_hand_computed_example():
    # pairs 1->2 (twice), 2->3; context 2, decay 0.5, smoothing 1
    bigram = fit_bigram([np.array([1, 2, 3]), np.array([1, 2])], 3)
    probs = next_item_probs(bigram, [np.array([1, 2]), np.zeros(0, np.int64)], smoothing=1.0,
                            context=2, decay=0.5).numpy()
    uni = np.array([2.1, 2.1, 1.1]) / 5.3  # add-0.1 item frequencies
    from_2 = (np.array([0, 0, 1.0]) + uni) / (1 + 1)  # the newest item, weight 1
    from_1 = (np.array([0, 2.0, 0]) + uni) / (2 + 1)  # one event older, weight 0.5
    np.testing.assert_allclose(probs[0], (from_2 + 0.5 * from_1) / 1.5, rtol=1e-6)
    np.testing.assert_allclose(probs[1], uni, rtol=1e-6)  # an empty history: the unigram


def test_scoring_blocks_never_hold_users_by_items():
    assert score_rows(54_000) * 54_000 <= 1 << 22
    assert score_rows(100) == 1024 and score_rows(10**9) == 8
    cat, seqs = random_data()
    lm = train_lm(cat, seqs, [s[:-1] for s in seqs], np.array([s[-1] for s in seqs]),
                  TrainConfig(**TINY), log=lambda _: None).lm
    whole = top_k(lm, seqs, 5, chunk_size=1000)
    for chunk in (1, 7):
        part = top_k(lm, seqs, 5, chunk_size=chunk)
        np.testing.assert_array_equal(part[0], whole[0])
        np.testing.assert_allclose(part[1], whole[1], rtol=1e-6)


def dropout_lm():
    """A tiny LM with dropout (for MC dropout), its histories and 10 candidates per user."""
    cat, seqs = random_data()
    config = TrainConfig(**{**TINY, "dropout": 0.3})
    lm = train_lm(cat, seqs, [s[:-1] for s in seqs], np.array([s[-1] for s in seqs]), config,
                  log=lambda _: None).lm
    return lm, seqs, np.tile(np.arange(1, 11), (len(seqs), 1))


def test_mc_dropout_in_blocks_matches_one_block(monkeypatch):
    lm, seqs, candidates = dropout_lm()
    mean, std = score_candidates_mc(lm, seqs, candidates, passes=3, seed=1)
    monkeypatch.setattr("duckrec.ml.score.score_rows", lambda n: 4)
    mean4, std4 = score_candidates_mc(lm, seqs, candidates, passes=3, seed=1)
    np.testing.assert_allclose(mean4, mean, rtol=1e-5)
    np.testing.assert_allclose(std4, std, rtol=1e-4, atol=1e-9)
    assert (std > 0).any()


def test_the_n_gram_at_a_few_items_is_the_dense_one_there():
    cat, seqs = random_data()
    lm = train_lm(cat, seqs, [s[:-1] for s in seqs], np.array([s[-1] for s in seqs]), TrainConfig(**TINY),
                  log=lambda _: None).lm
    mix = lm.mixture
    bigram = mix.fit_ngram(seqs, cat.n_items)
    pick = torch.from_numpy(np.random.default_rng(1).integers(0, cat.n_items, (len(seqs), 7)))
    dense = next_item_probs(bigram, seqs, mix.smoothing, mix.context, mix.decay)
    np.testing.assert_array_equal(score_module._ngram_at(bigram, seqs, mix, pick).numpy(),
                                  torch.gather(dense, 1, pick).numpy())


def test_validation_samples_users_on_big_catalogues(monkeypatch):
    cat, seqs = random_data(n_users=60)
    lines = []
    monkeypatch.setattr(train_module, "VALID_BLOCK", 40 * 10)  # 10 users' worth of 40 items
    validator = train_module._Validator([s[:-1] for s in seqs], np.array([s[-1] for s in seqs]), cat.n_items,
                                        TrainConfig(**TINY), lines.append, min_users=10)
    assert len(validator.histories) == 10
    assert lines == ["validation: a seeded sample of 10 of 60 users (40 items each)"]
    again = train_module._Validator([s[:-1] for s in seqs], np.array([s[-1] for s in seqs]), cat.n_items,
                                    TrainConfig(**TINY), lambda _: None, min_users=10)
    np.testing.assert_array_equal(again.targets, validator.targets)  # seeded


def test_softmax_is_sampled_automatically_above_a_catalogue_size():
    assert softmax_negatives("auto", 9_000) == 0
    assert softmax_negatives("auto", 54_000) == 2048
    assert softmax_negatives(0, 54_000) == 0 and softmax_negatives(500, 10) == 500
    with pytest.raises(ValueError, match="lm.sampled_softmax: expected 'auto'"):
        softmax_negatives("lots", 10)


def test_thread_count_respects_omp_num_threads_and_the_limit(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert allowed_cpus() == 1 and pick_threads(8) == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert pick_threads(1) == 1
    assert 1 <= pick_threads() <= allowed_cpus()
    free = CoreMeter().free_cores()
    assert free is None or free <= (__import__("os").cpu_count() or 1) + 0.5


def test_training_keeps_its_thread_count_whatever_the_load(monkeypatch):
    """Thread counts change float sums, so by default the count must not follow the host's load:
    a busy host (no idle core) still trains on the configured threads, with identical weights."""
    from duckrec.ml import threads as threads_module

    cat, seqs = random_data(n_items=300, n_users=80)
    config = TrainConfig(**{**TINY, "threads": 2, "dropout": 0.3, "matmul_dtype": "auto"})

    def trained():
        return train_lm(cat, seqs, [s[:-1] for s in seqs], np.array([s[-1] for s in seqs]), config,
                        log=lambda _: None).lm.to_bytes()

    quiet = trained()
    monkeypatch.setattr(threads_module, "idle_cores", lambda window=0.25: 0.0)
    monkeypatch.setattr(threads_module.CoreMeter, "free_cores", lambda self: 0.0)
    assert trained() == quiet
    # opted in, a busy host gets one thread
    assert threads_module.pick_threads(2, follow_load=True) == 1


def test_the_targets_memory_limit_is_honoured_and_checked(tmp_path):
    ratings, movies, tags = generated_dataset()
    project = make_project(tmp_path, ratings, movies, tags)
    text = (project / "project.yml").read_text()
    assert "memory_limit: 1280MB" in text
    (project / "project.yml").write_text(text.replace("memory_limit: 1280MB", "memory_limit: lots", 1))
    result = build(project)
    assert result.code != 0, result
    assert "target 'dev'" in result.out and "Memory must have a number" in result.out


def make_events(tmp_path, *extra):
    out = tmp_path / "events"
    cmd = [sys.executable, str(REPO / "bench" / "make_events.py"), "--events", "3000", "--users", "200",
           "--items", "500", "--seed", "3", "--out", str(out), *extra]
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def test_generator_writes_the_seeds_shape_deterministically(tmp_path):
    out = make_events(tmp_path / "a")
    con = duckdb.connect()
    ratings = con.execute(f"select count(*), count(distinct (userId, movieId)), min(rating), max(rating), "
                          f"max(timestamp) - min(timestamp) from read_csv('{out}/ratings.csv')").fetchone()
    assert ratings[0] == 3000 and ratings[1] == 3000  # exactly --events, one rating per user and item
    assert 0.5 <= ratings[2] and ratings[3] <= 5.0 and ratings[4] <= 366 * 86400
    movies = con.execute(f"select count(*), count(*) filter (where genres = '(no genres listed)'), "
                         f"min(title) from read_csv('{out}/movies.csv')").fetchone()
    assert movies[0] == 500 and movies[1] == 0 and movies[2].startswith("Item ")
    assert con.execute(f"select count(*) from read_csv('{out}/links.csv')").fetchone()[0] == 500
    # about one event in 200 leaves a tag, on an event of the log, a minute after it
    n_tags, on_events = con.execute(
        f"select count(*), count(*) filter (where exists (select 1 from read_csv('{out}/ratings.csv') r "
        f"where r.userId = t.userId and r.movieId = t.movieId and r.timestamp + 60 = t.timestamp)) "
        f"from read_csv('{out}/tags.csv') t").fetchone()
    assert 1 <= n_tags <= 60 and on_events == n_tags
    again = make_events(tmp_path / "b")
    assert (out / "ratings.csv").read_bytes() == (again / "ratings.csv").read_bytes()
    # sessions stay in a genre: consecutive events share one far more often than chance
    shared = con.execute(f"""
        with r as (select userId, movieId, row_number() over (partition by userId order by timestamp, movieId) as n
                   from read_csv('{out}/ratings.csv')),
             g as (select movieId, string_split(genres, '|') as gs from read_csv('{out}/movies.csv'))
        select avg((len(list_intersect(ga.gs, gb.gs)) > 0)::int)
        from r a join r b on a.userId = b.userId and b.n = a.n + 1
        join g ga on ga.movieId = a.movieId join g gb on gb.movieId = b.movieId""").fetchone()[0]
    assert shared > 0.6


def test_generator_without_content_and_as_parquet(tmp_path):
    out = make_events(tmp_path, "--no-content", "--format", "parquet")
    con = duckdb.connect()
    assert con.execute(f"select count(*) from '{out}/ratings.parquet'").fetchone()[0] == 3000
    assert con.execute(f"select count(distinct genres) from '{out}/movies.parquet'").fetchone() == (1,)
    assert con.execute(f"select count(*) from '{out}/tags.parquet'").fetchone() == (0,)


def skewed_lm(n_items=300):
    """A tiny LM on a skewed log, so the unigram and the n-gram matter."""
    rng = np.random.default_rng(3)
    cat = build_catalogue(np.arange(1, n_items + 1))
    popular = (rng.zipf(1.3, 4000) % n_items) + 1
    seqs = [popular[rng.integers(0, 4000, rng.integers(4, 30))] for _ in range(80)]
    config = TrainConfig(**TINY)
    lm = train_lm(cat, seqs, [s[:-1] for s in seqs], np.array([s[-1] for s in seqs]), config,
                  log=lambda _: None).lm
    return lm, seqs, config, n_items


def test_validation_on_big_catalogues_ranks_few_candidates_and_gets_the_same_top_k(monkeypatch):
    # 8 candidates of each source per user leave some users unsure (ranked over every item),
    # the others ranked over their candidates
    lm, seqs, config, n_items = skewed_lm()
    monkeypatch.setattr(train_module, "NARROW_DEPTH", 8)
    validator = train_module._Validator([s[:-1] for s in seqs], np.array([s[-1] for s in seqs]), n_items, config,
                                        lambda _: None)
    users = len(validator.histories)
    seen = validator._seen(0, users)
    model = lm.model
    with torch.no_grad():
        vectors = model.item_vectors()
        rnn = rnn_probs(model, user_states(model, validator.histories, config.window), vectors).masked_fill_(seen, -1.0)
    dense_calls = []
    top = validator._top
    monkeypatch.setattr(validator, "_top", lambda scores: dense_calls.append(scores.shape[0]) or top(scores))
    mixed = [w for w in config.rnn_weights if 0 < w < 1]
    narrow = validator._narrow(0, users, rnn, seen, mixed, first=True)
    assert 0 < sum(dense_calls) < users * len(narrow)  # some rows were unsure, most were not
    for s, d in validator.grid:
        ngram = next_item_probs(validator.bigram, validator.histories, s, config.ngram_context, d).masked_fill_(seen, -1.0)
        np.testing.assert_array_equal(narrow[("ngram", s, d)], top(ngram))
        for w in mixed:
            np.testing.assert_array_equal(narrow[(w, s, d)], top(torch.add(ngram, rnn, alpha=w / (1 - w))))
    # and the whole validation: the same best mixture and metrics either way
    validator.narrow = False
    dense = validator.evaluate(model)
    validator.narrow, validator.ngram_alone = True, None
    assert validator.evaluate(model) == dense
