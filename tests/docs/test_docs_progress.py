"""Progress of long Python models: a live bar on a terminal, throttled lines in logs, JSON
events; the ML library reports through a plain callable; the build's end summary."""
from __future__ import annotations

import io
import json

import numpy as np

from duckrec.artifacts.target import NodeResult
from duckrec.ml import TrainConfig, build_catalogue, train_lm
from duckrec.execute.progress import LOG_INTERVAL, QUIET_INTERVAL, NodeProgress, end_summary
from duckrec.core.nodes import Node
from duckrec.execute.reporter import Reporter
from engine_fixtures import run, write_project

NODE = Node(unique_id="model.lm_checkpoints", kind="model", name="lm_checkpoints", path="python_models/x.py")


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


def feed(progress: NodeProgress, clock: Clock, steps: int, every: float, **kwargs) -> None:
    for done in range(1, steps + 1):
        clock.now += every
        progress("epoch 1/2", done, steps, {"loss": 5.0 - done / 100}, unit="batch", **kwargs)


def test_logs_get_a_line_every_few_seconds_at_most():
    out, clock = io.StringIO(), Clock()
    progress = NodeProgress(Reporter(out=out), NODE, clock)
    feed(progress, clock, steps=100, every=0.5)  # 50 seconds of batches
    lines = out.getvalue().splitlines()
    assert len(lines) == 10                       # one per LOG_INTERVAL (5 s) of 50 s
    assert LOG_INTERVAL == 5.0
    assert lines[0].endswith("lm_checkpoints | epoch 1/2: 1/100 batch 1%, 0s elapsed, loss 4.99")
    assert lines[1].endswith("epoch 1/2: 11/100 batch 11%, 5s elapsed, ~44s left, loss 4.89")


def test_quiet_builds_get_a_heartbeat_only():
    out, clock = io.StringIO(), Clock()
    progress = NodeProgress(Reporter(quiet=True, out=out), NODE, clock)
    feed(progress, clock, steps=120, every=0.5)   # 60 seconds
    assert len(out.getvalue().splitlines()) == 60 / QUIET_INTERVAL


def test_json_logs_get_progress_events():
    out, clock = io.StringIO(), Clock()
    progress = NodeProgress(Reporter(log_format="json", out=out), NODE, clock)
    feed(progress, clock, steps=20, every=0.5)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["done"] for e in events] == [1, 11]
    first = events[0]
    assert first["event"] == "progress" and first["node"] == "model.lm_checkpoints" and first["task"] == "epoch 1/2"
    assert first["total"] == 20 and first["unit"] == "batch" and first["remaining"] is None
    assert events[1]["elapsed"] == 5.0 and events[1]["remaining"] == 4.5
    assert first["figures"] == {"loss": 4.99}


def test_a_terminal_gets_a_live_bar_with_the_figures(monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    out, clock = Terminal(), Clock()
    reporter = Reporter(out=out)
    progress = NodeProgress(reporter, NODE, clock)
    feed(progress, clock, steps=10, every=0.1)
    progress("epoch 1/2", 10, 10, {"loss": 4.9, "valid ndcg@10": 0.0812}, unit="batch", final=True)
    reporter.log(NODE, "epoch 1 loss 4.9")
    text = out.getvalue()
    assert "lm_checkpoints | epoch 1/2: 100%" in text and "10/10" in text
    assert "valid ndcg@10=0.0812" in text
    assert text.rstrip().endswith("lm_checkpoints | epoch 1 loss 4.9")


def test_training_reports_batches_and_validation_figures():
    rng = np.random.default_rng(0)
    catalogue = build_catalogue(np.arange(1, 21), np.array([1, 2]), np.array(["genre:a", "genre:b"]))
    sequences = [rng.integers(1, 21, size=12) for _ in range(30)]
    calls = []
    config = TrainConfig(embedding_dim=8, hidden_dim=8, epochs=2, batch_size=8, window=8, patience=5,
                         rnn_weights=(1.0,), smoothings=(1.0,), decays=(0.5,))
    train_lm(catalogue, sequences, sequences[:5], np.array([s[-1] for s in sequences[:5]]), config,
             log=lambda m: None, progress=lambda *a, **k: calls.append((a, k)))
    tasks = [a[0] for a, _ in calls]
    assert tasks[0] == "epoch 1/2" and tasks[-1] == "epoch 2/2"
    batches = [a for a, k in calls if a[0] == "epoch 1/2" and not k.get("final")]
    assert [a[1] for a in batches] == list(range(1, batches[0][2] + 1))      # every batch, done/total
    assert batches[-1][3]["positions/s"] > 0
    final = [(a, k) for a, k in calls if k.get("final")]
    assert len(final) == 2 and "valid ndcg@10" in final[0][0][3] and "valid hit@10" in final[0][0][3]


def test_end_summary_lists_slowest_and_skipped():
    def result(name, status, seconds):
        return NodeResult(f"model.{name}", name, "model", name, status, None, None, seconds)

    lines, event = end_summary([result("a", "success", 1.0), result("b", "success", 9.5), result("c", "skipped", 0),
                                result("d", "reused", 0.01), result("e", "success", 3.0)], slowest=2)
    assert lines == ["Slowest: b 9.5s, e 3.0s", "Reused (unchanged): 1: d", "Skipped: 1: c"]
    assert event["slowest"] == [{"node": "model.b", "seconds": 9.5}, {"node": "model.e", "seconds": 3.0}]


def test_a_python_model_reports_through_dbt_progress(tmp_path, capsys):
    root = write_project(tmp_path / "p", {
        "project.yml": "name: p\ntargets:\n  dev: {warehouse: warehouse.duckdb}\n",
        "python_models/slow.py": """
            import polars as pl

            def model(dbt, session):
                for i in range(1, 4):
                    dbt.progress("steps", i, 3, {"i": i}, unit="step", final=i == 3)
                return pl.DataFrame({"x": [1]})
        """,
    })
    result = run(capsys, root, "build", "--log-format", "json")
    assert result.code == 0, result
    events = [json.loads(line) for line in result.out.splitlines()]
    progress = [e for e in events if e["event"] == "progress"]
    assert len(progress) == 1 and progress[0]["task"] == "steps" and progress[0]["node"] == "model.slow"
    summary = events[-1]
    assert summary["event"] == "summary" and summary["slowest"][0]["node"] == "model.slow"
