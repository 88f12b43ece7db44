"""The recurrent item LM: tiny data, tiny models, seconds each."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from duckrec.ml import (
    Mixture, TrainConfig, TrainedLM, build_catalogue, make_batches, rank_metrics,
    score_candidates_mc, top_k, train_lm, training_windows, user_sequences, user_states,
)
from duckrec.ml.model import ItemLM, LMConfig, fast_matmul_dtype, full_softmax_loss
from duckrec.ml.ngram import fit_bigram, next_item_probs
from duckrec.ml.train import future_targets, lr_at

TINY = dict(embedding_dim=16, hidden_dim=32, dropout=0.0, lr=0.03, batch_size=8, window=8,
            epochs=40, patience=100, threads=1, rnn_weights=(1.0,), matmul_dtype="float32")


def cycle_data(n_items: int = 6, n_users: int = 12, length: int = 14):
    cat = build_catalogue(np.arange(100, 100 + n_items))
    seqs = [np.array([(u + t) % n_items + 1 for t in range(length)]) for u in range(n_users)]
    return cat, seqs


def nothing(n: int) -> list[np.ndarray]:
    return [np.zeros(0, dtype=np.int64)] * n


def train_tiny(cat, seqs, **overrides):
    cfg = TrainConfig(**{**TINY, **overrides})
    # a cycle's history holds every item, so validation (history excluded) cannot rank
    # its target: train without it and keep the last epoch
    return train_lm(cat, seqs, [], np.zeros(0), cfg, log=lambda _: None)


def test_overfits_a_cycle_exactly():
    cat, seqs = cycle_data()
    result = train_tiny(cat, seqs)
    items, _ = top_k(result.lm, seqs, 1, exclude=nothing(len(seqs)))
    expected = np.array([s[-1] % 6 + 1 for s in seqs])
    assert np.array_equal(items[:, 0], expected)
    assert result.history[-1]["train_loss"] < 0.1


def test_lstm_is_selectable_and_learns_the_cycle():
    cat, seqs = cycle_data()
    result = train_tiny(cat, seqs, cell="lstm", epochs=60)
    items, _ = top_k(result.lm, seqs, 1, exclude=nothing(len(seqs)))
    assert np.array_equal(items[:, 0], np.array([s[-1] % 6 + 1 for s in seqs]))


def test_padding_does_not_change_states():
    cat, seqs = cycle_data()
    lm = train_tiny(cat, seqs, epochs=2).lm
    short, long = seqs[0][:3], seqs[1]
    alone = user_states(lm.model, [short])
    padded = user_states(lm.model, [long, short])
    assert torch.allclose(alone[0], padded[1], atol=1e-6)


def test_batches_are_length_sorted_and_cover_every_transition():
    seqs = [np.arange(1, 12), np.arange(1, 4), np.array([5]), np.arange(1, 7)]
    windows = training_windows(seqs, 4)
    batches = make_batches(windows, 2)
    pairs = sorted((int(i), int(t)) for b in batches for i, t in
                   zip(b.inputs[b.targets > 0], b.targets[b.targets > 0]))
    expected = sorted((int(a), int(b)) for s in seqs for a, b in zip(s[:-1], s[1:]))
    assert pairs == expected
    for b in batches:  # no batch pads more than its length spread
        assert int((b.targets == 0).sum()) == int((b.lengths.max() - b.lengths).sum())


def test_same_seed_gives_identical_embeddings():
    cat, seqs = cycle_data()
    a = train_tiny(cat, seqs, epochs=3, dropout=0.2).lm.model.item_vectors()
    b = train_tiny(cat, seqs, epochs=3, dropout=0.2).lm.model.item_vectors()
    c = train_tiny(cat, seqs, epochs=3, dropout=0.2, seed=7).lm.model.item_vectors()
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_cold_item_gets_an_embedding_from_its_tokens():
    ids = np.arange(100, 108)  # items 107 (tokens) and 106 (no tokens) never occur
    cat = build_catalogue(ids, np.array([100, 101, 107, 102, 103]),
                          np.array(["g:a", "g:a", "g:a", "g:b", "g:b"], dtype=object))
    seqs = [np.array([(u + t) % 6 + 1 for t in range(10)]) for u in range(6)]
    lm = train_tiny(cat, seqs, epochs=3).lm
    vectors = lm.model.item_vectors().detach()
    cold, bare = cat.index(np.array([107, 106]))
    assert vectors[cold].abs().sum() > 0
    warm = cat.index(np.array([100]))[0]  # same single token, plus its own embedding
    own = lm.model.item_embedding.weight[warm].detach()
    assert torch.allclose(vectors[cold], vectors[warm] - own, atol=1e-6)
    assert vectors[bare].abs().sum() == 0  # no events, no tokens: only its bias scores it
    items, scores = top_k(lm, seqs[:1], 8, exclude=nothing(1))
    assert cold in items[0] and np.isfinite(scores).all()


def test_scoring_excludes_history():
    cat, seqs = cycle_data(n_items=8)
    lm = train_tiny(cat, seqs, epochs=2).lm
    hist = [s[:3] for s in seqs]
    items, scores = top_k(lm, hist, 8)
    for h, row, sc in zip(hist, items, scores):
        assert not set(h.tolist()) & set(row[np.isfinite(sc)].tolist())
        assert np.sum(np.isfinite(sc)) == 8 - len(set(h.tolist()))
        assert np.all(row[~np.isfinite(sc)] == 0)


def test_checkpoint_bytes_round_trip_to_identical_scores():
    cat, seqs = cycle_data()
    lm = train_tiny(cat, seqs, epochs=2).lm
    lm = dataclasses.replace(lm, mixture=Mixture(0.7, 2.0, 0.6, 3, 2, 0.5))
    again = TrainedLM.from_bytes(lm.to_bytes())
    a = top_k(lm, seqs, 4)
    b = top_k(again, seqs, 4)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert again.mixture == lm.mixture and np.array_equal(again.catalogue.item_ids, cat.item_ids)
    with pytest.raises(ValueError, match="expected a duckrec LM checkpoint"):
        TrainedLM.from_bytes(b"not a checkpoint")


def test_mc_dropout_is_seeded_and_uncertain():
    cat, seqs = cycle_data()
    lm = train_tiny(cat, seqs, epochs=2, dropout=0.3).lm
    cand = np.array([[1, 2, 0], [3, 4, 5]])
    m1, s1 = score_candidates_mc(lm, seqs[:2], cand, passes=5, seed=3)
    m2, s2 = score_candidates_mc(lm, seqs[:2], cand, passes=5, seed=3)
    assert np.array_equal(m1, m2) and np.array_equal(s1, s2)
    assert s1[0, 0] > 0 and m1[0, 2] == 0 and s1[0, 2] == 0
    assert not lm.model.training


def test_sampled_softmax_trains():
    cat, seqs = cycle_data()
    result = train_tiny(cat, seqs, sampled_softmax=3, epochs=30)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_empty_train_split_is_a_clear_error_when_fallback_is_off():
    cat, _ = cycle_data()
    strict = TrainConfig(**{**TINY, "allow_untrained": False})
    with pytest.raises(ValueError, match="is the train split empty"):
        train_lm(cat, [], [], np.zeros(0), strict)
    with pytest.raises(ValueError, match="is the train split empty"):
        train_lm(cat, [np.array([1]), np.array([2])], [], np.zeros(0), strict)


def test_empty_train_split_falls_back_to_the_ngram_half():
    cat, _ = cycle_data(n_items=8)
    said = []
    result = train_lm(cat, [np.array([3]), np.array([3]), np.array([5])], [], np.zeros(0),
                      TrainConfig(**TINY), log=said.append)
    assert result.history == [] and result.best_epoch == 0
    assert result.lm.mixture.rnn_weight == 0.0
    assert any("left untrained" in line for line in said)
    items, scores = top_k(result.lm, [np.array([1])], 2)
    assert np.isfinite(scores).all() and 1 not in items[0]


def test_one_event_users_unseen_items_and_empty_histories_score():
    cat, seqs = cycle_data(n_items=8)
    # one-event users train nothing but do not break training; no validation: last epoch kept
    result = train_lm(cat, seqs[:4] + [np.array([7])], [], np.zeros(0),
                      TrainConfig(**{**TINY, "epochs": 2}), log=lambda _: None)
    assert result.best_epoch == 2 and result.history[-1]["valid_ndcg"] is None
    hist = [np.array([8]), np.zeros(0, dtype=np.int64), np.array([7, 8])]  # 7, 8 never in train
    items, scores = top_k(result.lm, hist, 3)
    assert items.shape == (3, 3) and np.isfinite(scores).all()
    with pytest.raises(ValueError, match="unknown ids \\[999\\]"):
        cat.index(np.array([100, 999]))


def test_ngram_counts_and_probabilities():
    seqs = [np.array([1, 2, 3]), np.array([1, 2])]
    plain = fit_bigram(seqs, 4)
    p = next_item_probs(plain, [np.array([1])], smoothing=1e-6)
    assert p.shape == (1, 4) and abs(float(p.sum()) - 1) < 1e-5 and float(p[0, 1]) > 0.99
    skip = fit_bigram(seqs, 4, max_distance=2, backward_weight=0.5)
    q = next_item_probs(skip, [np.array([3, 1])], smoothing=1.0, context=2, decay=0.5)
    assert abs(float(q.sum()) - 1) < 1e-5


def test_rank_metrics_and_user_sequences():
    users, seqs = user_sequences(np.array([2, 1, 2, 1]), np.array([5, 6, 7, 8]), np.array([2, 1, 1, 2]))
    assert users.tolist() == [1, 2] and [s.tolist() for s in seqs] == [[6, 8], [7, 5]]
    m = rank_metrics(np.array([[3, 4], [5, 6]]), np.array([4, 9]), 2)
    assert m["hit_rate"] == 0.5 and abs(m["ndcg"] - 0.5 / np.log2(3)) < 1e-12


def test_config_from_vars_rejects_unknown_keys():
    assert TrainConfig.from_vars({"hidden_dim": 8, "decays": [0.5]}).decays == (0.5,)
    with pytest.raises(ValueError, match="unknown lm settings \\['hiden_dim'\\]"):
        TrainConfig.from_vars({"hiden_dim": 8})


def _reference_model(n: int = 40, d: int = 8):
    torch.manual_seed(0)
    model = ItemLM(LMConfig(n, 0, d, 12), torch.zeros(n + 1, dtype=torch.long),
                   torch.zeros(0, dtype=torch.long), torch.ones(n + 1))
    with torch.no_grad():
        model.item_bias.normal_()
    return model


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_chunked_softmax_matches_autograd_cross_entropy(dtype):
    model = _reference_model()
    states = torch.randn(23, 8, requires_grad=True)
    targets = torch.randint(1, 41, (23, 3))
    targets[::4, 1:] = 0  # positions with fewer future items
    weights = torch.tensor([1.0, 0.5, 0.25]).expand(23, 3)
    params = [states, model.item_embedding.weight, model.item_bias]
    loss = full_softmax_loss(model, states, targets, model.item_vectors(), chunk=5, dtype=dtype, weights=weights)
    grads = torch.autograd.grad(loss, params)
    logp = torch.log_softmax(states @ model.item_vectors()[1:].T + model.item_bias[1:], 1)
    w = torch.where(targets > 0, weights, 0.0)
    w = w / w.sum(1, keepdim=True)
    ref = -(w * logp.gather(1, (targets - 1).clamp_min(0))).sum() / 23
    ref_grads = torch.autograd.grad(ref, params)
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    assert abs(loss.item() - ref.item()) < tol * 10
    for g, r in zip(grads, ref_grads):
        assert torch.allclose(g, r, atol=tol, rtol=tol)
    # one target per position is plain next-item cross-entropy
    one = full_softmax_loss(model, states, targets[:, 0], model.item_vectors(), chunk=7)
    plain = torch.nn.functional.cross_entropy(logp, targets[:, 0] - 1, reduction="mean")
    assert abs(one.item() - plain.item()) < 1e-5


def test_future_targets_and_learning_rate_schedule():
    targets = torch.tensor([[2, 3, 4, 0], [5, 6, 0, 0]])
    future, w = future_targets(targets, 3, 0.5)
    assert future[0, 0].tolist() == [2, 3, 4] and future[0, 2].tolist() == [4, 0, 0]
    assert future[1, 1].tolist() == [6, 0, 0] and future.shape == (2, 4, 3)
    assert torch.allclose(w[0, 0], torch.tensor([4, 2, 1]) / 7.0) and float(w[0, 2, 0]) == 1.0
    same, ones = future_targets(targets, 1, 0.5)
    assert torch.equal(same[..., 0], targets) and torch.all(ones[targets > 0] == 1)
    cfg = TrainConfig(lr=0.01, warmup=0.1, min_lr=0.1)
    lrs = [lr_at(s, 100, cfg) for s in range(100)]
    assert lrs[0] == pytest.approx(0.001) and lrs[9] == pytest.approx(0.01)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:])) and lrs[-1] == pytest.approx(0.001, rel=0.01)
    assert fast_matmul_dtype("float32") == torch.float32
    with pytest.raises(ValueError, match="matmul_dtype"):
        fast_matmul_dtype("fp8")


def test_default_config_is_deterministic_by_epochs_not_time():
    assert TrainConfig().max_seconds is None  # a wall-clock budget is opt-in only
    cat, seqs = cycle_data(n_items=8)
    valid_h, valid_t = [s[:5] for s in seqs], np.array([s[5] for s in seqs])
    cfg = dict(epochs=4, patience=1, dropout=0.2, horizon=2)
    a = train_lm(cat, seqs, valid_h, valid_t, TrainConfig(**{**TINY, **cfg}), log=lambda _: None)
    b = train_lm(cat, seqs, valid_h, valid_t, TrainConfig(**{**TINY, **cfg}), log=lambda _: None)
    assert a.best_epoch == b.best_epoch and len(a.history) == len(b.history)
    assert torch.equal(a.lm.model.item_vectors(), b.lm.model.item_vectors())
    assert all(r["rnn_valid_ndcg"] is not None for r in a.history)


def test_divergence_warns_when_the_train_loss_blows_up():
    from duckrec.ml.train import divergence
    # the 10M-event build: the loss rose tenfold after epoch 1 and the RNN alone fell to noise
    rows = [{"epoch": 1, "train_loss": 6.7231, "rnn_valid_ndcg": 0.0027, "rnn_weight": 0.0},
            {"epoch": 2, "train_loss": 68.2696, "rnn_valid_ndcg": 0.0081, "rnn_weight": 0.0},
            {"epoch": 3, "train_loss": 65.533, "rnn_valid_ndcg": 0.0034, "rnn_weight": 0.0}]
    warning = divergence(rows)
    assert warning.startswith("warning: training diverged: train loss 68.27 in epoch 2 against 6.723 in epoch 1")
    assert "RNN alone valid NDCG 0.0034, rnn weight 0.0" in warning
    # a loss that falls, or wobbles a little, is training as usual
    assert divergence([{"epoch": 1, "train_loss": 6.5}, {"epoch": 2, "train_loss": 6.0},
                       {"epoch": 3, "train_loss": 6.2}]) is None
    assert "nan in epoch 2" in divergence([{"epoch": 1, "train_loss": 6.5}, {"epoch": 2, "train_loss": float("nan")}])


def test_spike_guard_rolls_back_and_halves_the_learning_rate():
    from duckrec.ml.train import SpikeGuard
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    guard = SpikeGuard(model, opt)
    original = model.weight.detach().clone()
    for step in range(1, 301):  # snapshots at steps 1 (the first) and 250
        assert not guard.spiked(6.0)
        guard.applied(step, 6.0)
    with torch.no_grad():
        model.weight.add_(100.0)  # the weights a diverging run would have
    assert not guard.spiked(8.9)  # below 1.5 x the average of 6
    assert guard.spiked(9.1) and guard.spiked(float("nan"))
    assert guard.roll_back() == 1  # the older of the last two snapshots (steps 1 and 250)
    assert torch.equal(model.weight, original) and guard.scale == 0.5 and guard.spikes == 1
    # a second spike goes back to the same snapshot and halves again
    assert guard.roll_back() == 1 and guard.scale == 0.25


def test_weight_average_is_the_moving_average_and_swaps_back():
    from duckrec.ml.train import WeightAverage
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    average = WeightAverage(model, decay=0.9)
    for value in (1.0, 2.0):
        with torch.no_grad():
            model.weight.fill_(value)
        average.update()
    # decays min(0.9, 2/11) then min(0.9, 3/12): 0 -> 9/11 * 1 -> 0.25 * 9/11 + 0.75 * 2
    expected = 0.25 * 9 / 11 + 0.75 * 2
    with average.swapped():
        assert model.weight.item() == pytest.approx(expected)
    assert model.weight.item() == 2.0  # training goes on from the live weights
    # the time constant in epochs: 2 epochs of 50 steps decay by exp(-1/100) a step; 0 is off
    assert WeightAverage.for_epochs(model, 2, 50).decay == pytest.approx(np.exp(-0.01))
    assert WeightAverage.for_epochs(model, 0, 50) is None


def test_training_keeps_the_weights_average_when_asked():
    cat, seqs = cycle_data(n_items=8)
    last = train_tiny(cat, seqs, epochs=2)
    averaged = train_tiny(cat, seqs, epochs=2, average_epochs=1)
    again = train_tiny(cat, seqs, epochs=2, average_epochs=1)
    # the same steps, but the kept weights are their moving average, the same on every run
    assert [r["train_loss"] for r in averaged.history] == [r["train_loss"] for r in last.history]
    assert not torch.allclose(averaged.lm.model.item_vectors(), last.lm.model.item_vectors())
    assert torch.equal(averaged.lm.model.item_vectors(), again.lm.model.item_vectors())


def test_spike_guard_waits_for_an_average():
    from duckrec.ml.train import SpikeGuard
    model = torch.nn.Linear(2, 1)
    guard = SpikeGuard(model, torch.optim.Adam(model.parameters()))
    for step in range(1, SpikeGuard.WARM):
        guard.applied(step, 9.5 - step * 0.01)
    # early training: no spike is called before WARM applied steps, however the loss moves
    assert not guard.spiked(50.0)
