"""Warm start: weights carried to a grown catalogue; windows over what is new plus replay."""
from __future__ import annotations

import numpy as np
import torch

from duckrec.ml import TrainConfig, build_catalogue, train_lm, training_windows
from duckrec.ml.warm import carry_weights, warm_windows

TINY = dict(embedding_dim=8, hidden_dim=8, dropout=0.0, lr=0.03, batch_size=8, window=4, epochs=3,
            patience=100, threads=1, rnn_weights=(1.0,), matmul_dtype="float32")


def _trained(cat, seqs):
    return train_lm(cat, seqs, [], np.zeros(0), TrainConfig(**TINY), log=lambda _: None).lm


def test_known_items_keep_their_vectors_and_a_new_item_starts_from_its_tokens():
    old_cat = build_catalogue(np.array([10, 20, 30]), np.array([10, 20, 30]), np.array(["g:a", "g:a", "g:b"]))
    seqs = [np.array([1, 2, 3, 1, 2]), np.array([2, 3, 1])]
    old = _trained(old_cat, seqs)
    # item 25 is new and shares token g:a; g:b now has two items, so it is kept
    new_cat = build_catalogue(np.array([10, 20, 25, 30]), np.array([10, 20, 25, 30, 25]),
                              np.array(["g:a", "g:a", "g:a", "g:b", "g:b"]))
    has_events = np.array([0, 1, 1, 0, 1], dtype=bool)
    state = carry_weights(old, new_cat, has_events, seed=1)
    old_w = old.model.state_dict()
    # old index of 30 is 3, new index is 4
    assert torch.equal(state["item_embedding.weight"][4], old_w["item_embedding.weight"][3])
    assert torch.equal(state["item_bias"][4], old_w["item_bias"][3])
    assert torch.count_nonzero(state["item_embedding.weight"][3]) == 0
    assert torch.equal(state["token_embedding.weight"][new_cat.token_names.index("g:a")],
                       old_w["token_embedding.weight"][old_cat.token_names.index("g:a")])
    for key in ("rnn.weight_ih_l0", "to_item_space.weight"):
        assert torch.equal(state[key], old_w[key])


def test_warm_windows_cover_every_new_transition_and_replay_as_many_old_ones():
    seqs = [np.arange(1, 21), np.arange(1, 11), np.arange(1, 11) + 20, np.arange(1, 11) + 40]
    windows, n_fresh, n_replay = warm_windows(seqs, np.array([3, 0, 0, 0]), window=4, replay_ratio=1.0, seed=0)
    fresh = windows[:n_fresh]
    transitions = {(int(w[i]), int(w[i + 1])) for w in fresh for i in range(len(w) - 1)}
    assert {(17, 18), (18, 19), (19, 20)} <= transitions
    assert n_replay == n_fresh
    pool = {tuple(w) for w in training_windows(seqs[1:], 4)}
    assert all(tuple(w) in pool for w in windows[n_fresh:])


def test_warm_start_keeps_the_start_when_no_epoch_beats_it():
    cat = build_catalogue(np.arange(100, 106))
    seqs = [np.array([(u + t) % 6 + 1 for t in range(10)]) for u in range(8)]
    old = _trained(cat, seqs)
    histories = [s[:-1] for s in seqs]
    targets = np.array([s[-1] for s in seqs])
    init = carry_weights(old, cat, np.ones(7, dtype=bool), seed=0)
    # a learning rate of 0: no epoch can improve on the starting point
    cfg = TrainConfig(**{**TINY, "lr": 0.0})
    result = train_lm(cat, seqs, histories, targets, cfg, log=lambda _: None, init=init,
                      windows=training_windows(seqs, 4))
    assert result.best_epoch == 0
    for k, v in init.items():
        assert torch.equal(result.lm.model.state_dict()[k], v), k
