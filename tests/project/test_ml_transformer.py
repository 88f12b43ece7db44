"""The transformer cell of the item LM: tiny data, tiny models, seconds each."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from duckrec.ml import TrainConfig, TrainedLM, build_catalogue, score_candidates_mc, top_k, train_lm, user_states
from duckrec.ml.model import ItemLM, LMConfig
from duckrec.ml.train import context_length, softmax_negatives
from duckrec.ml.warm import carry_weights, compatible, warm_windows

TINY = dict(cell="transformer", embedding_dim=16, hidden_dim=16, layers=2, heads=2, dropout=0.0, lr=0.01,
            batch_size=8, window=8, max_len=8, epochs=40, patience=100, threads=1, rnn_weights=(1.0,),
            matmul_dtype="float32")


def pattern_data(n_items: int = 9, n_users: int = 12, length: int = 14):
    """A deterministic pattern a cycle model cannot shortcut: the next item is the item two
    steps back plus one (so it needs attention beyond the last item)."""
    cat = build_catalogue(np.arange(100, 100 + n_items))
    seqs = []
    for u in range(n_users):
        s = [u % n_items + 1, (u * 5 + 2) % n_items + 1]
        while len(s) < length:
            s.append(s[-2] % n_items + 1)
        seqs.append(np.array(s))
    return cat, seqs


def train_tiny(cat, seqs, **overrides):
    return train_lm(cat, seqs, [], np.zeros(0), TrainConfig(**{**TINY, **overrides}), log=lambda _: None)


def tiny_model(dropout: float = 0.0, max_len: int = 10) -> ItemLM:
    torch.manual_seed(0)
    cfg = LMConfig(12, 0, 8, 8, "transformer", 2, dropout, 2, max_len)
    return ItemLM(cfg, torch.zeros(13, dtype=torch.long), torch.zeros(0, dtype=torch.long), torch.ones(13)).eval()


def test_transformer_learns_a_pattern_beyond_the_last_item():
    cat, seqs = pattern_data()
    result = train_tiny(cat, seqs)
    hist = [s[:-1] for s in seqs]
    items, _ = top_k(result.lm, hist, 1, exclude=[np.zeros(0, np.int64)] * len(hist))
    assert np.array_equal(items[:, 0], np.array([s[-1] for s in seqs]))
    # the floor: each sequence's second item is not predictable (log 9 over 13 positions = 0.17)
    assert result.history[-1]["train_loss"] < 0.25
    assert result.lm.context == 8 and result.lm.model.config.max_len == 8


def test_later_items_never_change_earlier_outputs():
    model = tiny_model()
    a = torch.tensor([[1, 2, 3, 4, 5, 6]])
    b = torch.tensor([[1, 2, 3, 9, 11, 7]])
    with torch.no_grad():
        out_a, out_b = model(a)[0], model(b)[0]
    assert torch.allclose(out_a[:, :3], out_b[:, :3], atol=1e-6)
    assert not torch.allclose(out_a[:, 3:], out_b[:, 3:], atol=1e-4)


def test_padding_does_not_change_outputs():
    model = tiny_model()
    seq = torch.tensor([[3, 1, 4, 1, 5]])
    right = torch.tensor([[3, 1, 4, 1, 5, 0, 0, 0], [2, 7, 1, 8, 2, 8, 1, 8]])
    with torch.no_grad():
        alone = model(seq)[0]
        padded = model(right)[0]
    assert torch.allclose(alone[0], padded[0, :5], atol=1e-6)
    # the key padding mask: a padding item inside the window is never attended to
    x = model.item_vectors()
    with torch.no_grad():
        real = torch.tensor([[True, False, True]])
        h1, _ = model.rnn(torch.stack([x[3], x[0], x[4]]).unsqueeze(0), real)
        h2, _ = model.rnn(torch.stack([x[3], x[9], x[4]]).unsqueeze(0), real)
    assert torch.allclose(h1[0, 2], h2[0, 2], atol=1e-6)
    # and user_states: a short history gives the same state alone as beside a long one
    cat, seqs = pattern_data()
    lm = train_tiny(cat, seqs, epochs=2).lm
    assert torch.allclose(user_states(lm.model, [seqs[0][:3]], lm.context)[0],
                          user_states(lm.model, [seqs[1], seqs[0][:3]], lm.context)[1], atol=1e-6)


def test_too_long_a_window_is_an_error():
    with pytest.raises(ValueError, match="at most max_len=10"):
        tiny_model()(torch.ones(1, 11, dtype=torch.long))


def test_context_length_follows_the_data():
    assert context_length("auto", [np.arange(5)] * 10) == 8
    assert context_length("auto", [np.arange(30)] * 10) == 32
    assert context_length("auto", [np.arange(1000)] * 10) == 200
    assert context_length(17, []) == 17
    with pytest.raises(ValueError, match="lm.max_len"):
        context_length(0, [])
    cat, seqs = pattern_data(length=20)
    assert train_tiny(cat, seqs, epochs=1, max_len="auto").lm.context == 24


def test_full_softmax_while_it_fits_the_budget():
    assert softmax_negatives("auto", 9_000, 10**9) == 0
    assert softmax_negatives("auto", 20_000, 150_000) == 0  # 3e9 item-positions an epoch: full
    assert softmax_negatives("auto", 54_542, 233_000) == 2048  # Beauty: 4 minutes an epoch, sampled
    assert softmax_negatives("auto", 54_542) == 2048  # positions unknown: the catalogue decides


def test_transformer_checkpoint_mc_dropout_and_determinism():
    cat, seqs = pattern_data()
    a = train_tiny(cat, seqs, epochs=3, dropout=0.2)
    b = train_tiny(cat, seqs, epochs=3, dropout=0.2)
    assert torch.equal(a.lm.model.item_vectors(), b.lm.model.item_vectors())
    again = TrainedLM.from_bytes(a.lm.to_bytes())
    x, y = top_k(a.lm, seqs, 4), top_k(again, seqs, 4)
    assert np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1])
    cand = np.array([[1, 2, 0], [3, 4, 5]])
    m1, s1 = score_candidates_mc(a.lm, seqs[:2], cand, passes=5, seed=3)
    m2, s2 = score_candidates_mc(a.lm, seqs[:2], cand, passes=5, seed=3)
    assert np.array_equal(m1, m2) and np.array_equal(s1, s2) and s1[0, 0] > 0 and s1[0, 2] == 0


def test_transformer_warm_start_keeps_its_positions():
    cat, seqs = pattern_data()
    old = train_tiny(cat, seqs, epochs=2).lm
    assert compatible(old, {"cell": "transformer", "layers": 2, "heads": 2, "embedding_dim": 16,
                            "hidden_dim": 16, "max_len": "auto"})
    assert not compatible(old, {"cell": "transformer", "layers": 2, "heads": 2, "max_len": 16})
    assert not compatible(old, {"cell": "gru"})
    grown = build_catalogue(np.arange(100, 111))
    counts = np.bincount(np.concatenate(seqs), minlength=12) > 0
    init = carry_weights(old, grown, counts, seed=1)
    windows, fresh, _ = warm_windows(seqs, np.full(len(seqs), 3), 32, 1.0, seed=1)  # windows of 33 > 8
    warm = train_lm(grown, seqs, [], np.zeros(0), TrainConfig(**{**TINY, "epochs": 1, "max_len": "auto"}),
                    log=lambda _: None, init=init, windows=windows)
    assert warm.lm.context == 8 and warm.lm.model.config.max_len == 8 and fresh > 0
