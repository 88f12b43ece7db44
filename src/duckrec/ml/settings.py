"""Settings read from a project var (a mapping), with one rule for every var, and the LM's
training settings (TrainConfig, the `lm` var)."""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any


def settings_values(cls: type, values: Mapping | None, var: str, float_tuples: Iterable[str] = ()) -> dict[str, Any]:
    """The keyword arguments of dataclass ``cls`` from the mapping of var ``var``: an unknown key
    is a ValueError naming it and the known ones, and each key of ``float_tuples`` becomes a
    tuple of floats (YAML gives lists)."""
    values = dict(values or {})
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown {var} settings {unknown}; expected some of {sorted(known)}")
    for key in float_tuples:
        if key in values:
            values[key] = tuple(float(v) for v in values[key])
    return values


@dataclass(frozen=True)
class TrainConfig:
    embedding_dim: int = 64
    hidden_dim: int = 128
    cell: str = "gru"  # gru, lstm or transformer (causal self-attention, SASRec-shaped)
    layers: int = 1  # recurrent layers, or transformer blocks
    heads: int = 1  # transformer: attention heads per block
    # transformer: its context (training windows and scoring, in place of `window`);
    # "auto": the 95th percentile of the train sequence lengths, rounded up to 8, in [8, 200]
    max_len: int | str = "auto"
    dropout: float = 0.3
    epochs: int = 10  # at most; also the length of the cosine learning-rate schedule
    batch_size: int = 64  # windows per step (transformer: batch_size x window / max_len windows, the same positions)
    window: int = 32  # training windows (truncated BPTT length) and scoring context
    lr: float = 2e-2  # peak learning rate (Adam)
    warmup: float = 0.05  # fraction of all steps with a linear warm-up to lr, then cosine decay
    min_lr: float = 0.05  # the cosine ends at lr * min_lr after `epochs` epochs
    weight_decay: float = 0.0
    patience: int = 3  # epochs in which neither the mixture nor the RNN alone improves on validation
    # Opt-in wall-clock guard: stop before an epoch that would overrun it. The number of
    # epochs then depends on machine load, so a fixed seed no longer fixes the tables:
    # it trades determinism for a time bound. None (default): epochs/patience alone decide.
    max_seconds: float | None = None
    horizon: int = 1  # each position's target: the next `horizon` items, weighted horizon_decay ** (k - 1)
    horizon_decay: float = 0.5
    matmul_dtype: str = "auto"  # softmax matmuls: auto (bfloat16 where native), float32, bfloat16
    # 0: full softmax; n > 0: n shared negatives per batch (logQ-corrected); "auto": full up to
    # duckrec.ml.train.FULL_SOFTMAX_ITEMS items or while items x train positions stay within
    # FULL_SOFTMAX_BUDGET (an epoch's softmax cost), above it AUTO_NEGATIVES negatives
    sampled_softmax: int | str = "auto"
    seed: int = 42
    device: str = "auto"  # training: auto (CUDA when present), cpu, cuda, cuda:N; scoring stays on the CPU
    # lm.distributed (duckrec.ml.distributed): DDP over processes; None trains in this process
    distributed: dict | None = None
    # torch threads: at most this (the build target's threads), OMP_NUM_THREADS and the
    # CPUs this process may use; None: those two alone
    threads: int | None = None
    # Opt-in: re-pick the thread count every few seconds from the cores idle on the host.
    # A different thread count changes the float sums of training, so the weights then depend
    # on the machine's load: like max_seconds it trades determinism, here for throughput on a
    # crowded host. Off (default): the count above, fixed; idle threads wait passively either way.
    follow_load: bool = False
    # with text embeddings (the `text` var): the share of items whose own embedding and bias sit
    # out each step, so an item's text learns to stand for it alone, as for a new item
    text_dropout: float = 0.2
    # validate and keep an exponential moving average of the weights instead of the last step's:
    # its time constant in epochs (0: off). An epoch's last step is noisy at a high learning
    # rate; the average is steadier, so the epoch validation keeps moves the test figures less
    average_epochs: float = 0.0
    eval_k: int = 10
    # the n-gram half of the mixture; the grids are searched on validation NDCG@k
    ngram_distance: int = 5
    ngram_backward: float = 0.5
    ngram_context: int = 5
    # no train transition: fall back to the n-gram half instead of failing (pipelines want a list)
    allow_untrained: bool = True
    rnn_weights: tuple[float, ...] = (1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0)
    smoothings: tuple[float, ...] = (0.5, 2.0, 8.0)
    decays: tuple[float, ...] = (0.4, 0.6, 0.8)
    # text-aware LM: the shares of P_rnn for items without training events, tried on validation
    cold_weights: tuple[float, ...] = (0.0, 0.02, 0.05, 0.1, 0.2)

    @classmethod
    def from_vars(cls, values: dict | None) -> "TrainConfig":
        """A config from a project's ``lm`` var; unknown keys are an error."""
        return cls(**settings_values(cls, values, "lm", ("rnn_weights", "smoothings", "decays", "cold_weights")))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)
