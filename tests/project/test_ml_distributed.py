"""lm.distributed: DistributedDataParallel training on 2 CPU processes (gloo)."""
from __future__ import annotations

import numpy as np
import pytest

from duckrec.ml import TrainConfig, TrainedLM, build_catalogue, top_k
from duckrec.ml.distributed import World, distributed_settings, train_distributed
from sql_fixtures import TINY_LM, build, connect, generated_dataset, make_project, rows


def test_settings_are_checked():
    assert distributed_settings({"nproc_per_node": 2})["nnodes"] == 1
    with pytest.raises(ValueError, match="unknown settings \\['nprocs'\\]"):
        distributed_settings({"nprocs": 2})
    with pytest.raises(ValueError, match="nproc_per_node: expected a whole number >= 1, found 0"):
        distributed_settings({"nproc_per_node": 0})
    with pytest.raises(ValueError, match="needs rdzv_endpoint"):
        distributed_settings({"nnodes": 2})


def test_each_process_takes_an_equal_share_of_the_batches():
    import torch

    batches = list(range(7))
    shards = [World(r, 3, torch.device("cpu")).shard(batches) for r in range(3)]
    assert shards == [[0, 3], [1, 4], [2, 5]]
    assert World(1, 4, torch.device("cpu")).shard([0, 1]) == [1]


def test_two_processes_learn_a_cycle_and_the_checkpoint_round_trips():
    n = 12
    cat = build_catalogue(np.arange(1, n + 1))
    seqs = [np.arange(u, u + 16) % n + 1 for u in range(48)]
    histories, targets = [s[:-1] for s in seqs], np.array([s[-1] for s in seqs])
    config = TrainConfig(embedding_dim=16, hidden_dim=32, dropout=0.0, lr=0.03, batch_size=8, window=8,
                         epochs=30, patience=100, rnn_weights=(1.0,), matmul_dtype="float32",
                         distributed={"nproc_per_node": 2})
    lines = []
    result = train_distributed(cat, histories, histories[:12], targets[:12], config, log=lines.append)
    assert any("2 processes x 1 hosts on cpu (gloo)" in line for line in lines)
    assert len(result.history) == 30 and result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    items, _ = top_k(result.lm, histories, 1, exclude=[np.zeros(0, np.int64)] * len(histories))
    assert (items[:, 0] == targets).mean() > 0.5  # the next item of the cycle (chance: 1 in 12)
    again = TrainedLM.from_bytes(result.lm.to_bytes())
    np.testing.assert_array_equal(top_k(again, histories, 3)[0], top_k(result.lm, histories, 3)[0])


def test_a_build_trains_on_two_processes(tmp_path):
    ratings, movies, tags = generated_dataset()
    project = make_project(tmp_path, ratings, movies, tags,
                           vars={"ks": [3], "lm": {**TINY_LM, "distributed": {"nproc_per_node": 2}}})
    result = build(project)
    assert result.code == 0, result
    assert "distributed training: 2 processes" in result.out
    con = connect(project)
    state = rows(con, "select state from ml.lm_checkpoints")[0][0]
    assert TrainedLM.from_bytes(state).to_bytes() == TrainedLM.from_bytes(TrainedLM.from_bytes(state).to_bytes()).to_bytes()
    assert rows(con, "select count(*) > 0 from recs.lm_lists")[0][0]
