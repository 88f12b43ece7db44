"""The text-aware LM: an item's text embedding is an input of its vector and bias, so an item
with no training events is scored from its text; tiny data, seconds each."""
from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest
import torch

from duckrec.ml import TrainConfig, TrainedLM, build_catalogue, top_k, train_lm
from duckrec.ml.data import text_matrix
from duckrec.ml.model import ItemLM, LMConfig
from duckrec.ml.score import rnn_probs, user_states
from duckrec.ml.warm import carry_weights

TINY = dict(embedding_dim=16, hidden_dim=32, dropout=0.0, lr=0.03, batch_size=8, window=8, epochs=60,
            patience=100, threads=1, rnn_weights=(1.0,), matmul_dtype="float32", text_dropout=0.5)


def cycle_with_new_items():
    """Items 100..105 in a cycle (indices 1..6); items 106 and 107 (indices 7, 8) have no event,
    and their texts are those of items 102 and 104 (indices 3, 5)."""
    cat = build_catalogue(np.arange(100, 108))
    seqs = [np.array([(u + t) % 6 + 1 for t in range(14)]) for u in range(12)]
    rng = np.random.default_rng(0)
    text = np.zeros((9, 8), dtype=np.float32)
    text[1:7] = rng.normal(size=(6, 8))
    text[1:7] /= np.linalg.norm(text[1:7], axis=1, keepdims=True)
    text[7], text[8] = text[3], text[5]
    return cat, seqs, text


def train(cat, seqs, text, **overrides):
    return train_lm(cat, seqs, [], np.zeros(0), TrainConfig(**{**TINY, **overrides}), log=lambda _: None, text=text)


def test_a_new_item_is_ranked_by_its_text():
    cat, seqs, text = cycle_with_new_items()
    lm = train(cat, seqs, text).lm
    lm = dataclasses.replace(lm, mixture=dataclasses.replace(lm.mixture, cold_weight=0.3))
    # a history ending in item index 2 predicts index 3 next; ending in 4 predicts 5
    items, _ = top_k(lm, [np.array([1, 2]), np.array([3, 4])], 8, exclude=[np.zeros(0, np.int64)] * 2)
    warm = [[i for i in row if i <= 6] for row in items]
    new = [[i for i in row if i > 6] for row in items]
    assert warm[0][0] == 3 and warm[1][0] == 5
    # the items without events are listed too, each where its text points: 7 reads like 3, 8 like 5
    assert new[0] == [7, 8] and new[1] == [8, 7]


def test_the_cold_share_splits_the_probability():
    cat, seqs, text = cycle_with_new_items()
    lm = train(cat, seqs, text, epochs=3).lm
    states = user_states(lm.model, [np.array([1, 2])])
    with torch.no_grad():
        probs = rnn_probs(lm.model, states, lm.model.item_vectors(), 0.2)[0]
        none = rnn_probs(lm.model, states, lm.model.item_vectors(), 0.0)[0]
    assert probs[6:].sum().item() == pytest.approx(0.2, abs=1e-5)
    assert probs[:6].sum().item() == pytest.approx(0.8, abs=1e-5)
    # share 0: an item without events is never recommended
    assert none[6:].sum().item() == 0.0 and none.sum().item() == pytest.approx(1.0, abs=1e-5)


def test_items_without_events_stay_out_of_the_training_softmax():
    cat, seqs, text = cycle_with_new_items()
    model = ItemLM(LMConfig(8, 0, 16, 32, text_dim=8), torch.zeros(9, dtype=torch.long), torch.zeros(0, dtype=torch.long),
                   torch.tensor([0, 1, 1, 1, 1, 1, 1, 0, 0]), torch.from_numpy(text))
    bias = model.biases(training=True)
    assert torch.isinf(bias[6:]).all() and torch.isfinite(bias[:6]).all()
    assert torch.isfinite(model.biases()).all()
    # a new item's vector is its text's projection: the same text, the same vector
    vectors = model.item_vectors()
    assert torch.allclose(vectors[7], model.text_projection(torch.from_numpy(text[3])), atol=1e-6)
    assert torch.allclose(vectors[7], vectors[3] - model.item_embedding.weight[3], atol=1e-6)


def test_a_checkpoint_keeps_the_texts():
    cat, seqs, text = cycle_with_new_items()
    lm = train(cat, seqs, text, epochs=2).lm
    again = TrainedLM.from_bytes(lm.to_bytes())
    assert torch.equal(again.model.text_vectors, lm.model.text_vectors)
    assert torch.equal(again.model.item_vectors(), lm.model.item_vectors())


def test_text_vectors_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match=r"expected text vectors of shape \(9, 8\), found \(9, 4\)"):
        ItemLM(LMConfig(8, 0, 16, 32, text_dim=8), torch.zeros(9, dtype=torch.long), torch.zeros(0, dtype=torch.long),
               torch.ones(9), torch.zeros(9, 4))


def test_text_matrix_follows_the_catalogue():
    cat = build_catalogue(np.array([10, 20, 30]))
    texts = pl.DataFrame({"item_id": [30, 10, 99], "embedding": [[3.0, 3.0], [1.0, 1.0], [9.0, 9.0]]})
    m = text_matrix(cat, texts)
    assert m.tolist() == [[0, 0], [1, 1], [0, 0], [3, 3]]  # padding, 10, 20 (no text), 30; 99 unknown
    assert text_matrix(cat, None) is None and text_matrix(cat, texts.head(0)) is None


def test_a_warm_start_needs_the_new_catalogue_texts():
    cat, seqs, text = cycle_with_new_items()
    lm = train(cat, seqs, text, epochs=1).lm
    with pytest.raises(ValueError, match="reads text embeddings of width 8"):
        carry_weights(lm, cat, np.ones(9, bool), 0)
    state = carry_weights(lm, cat, np.ones(9, bool), 0, text)
    assert torch.equal(state["text_vectors"], torch.from_numpy(text))
