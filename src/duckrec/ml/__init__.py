"""duckrec's ML library: the recurrent item language model. Arrays in, arrays out;
it never imports the engine."""
from . import threads  # first: it sets the OpenMP wait policy, read once when torch loads
from .model import ItemLM, LMConfig
from .ngram import Bigram, fit_bigram, next_item_probs
from .score import (
    Mixture, TrainedLM, iter_top_k, latest_checkpoint, rank_metrics, score_candidates_mc, top_k, user_states,
)
from .sequences import Catalogue, build_catalogue, list_histories, make_batches, training_windows, user_sequences
from .train import TrainConfig, TrainResult, train_lm

__all__ = [
    "Bigram", "Catalogue", "ItemLM", "LMConfig", "Mixture", "TrainConfig", "TrainResult", "TrainedLM",
    "build_catalogue", "fit_bigram", "iter_top_k", "latest_checkpoint", "list_histories", "make_batches",
    "next_item_probs", "rank_metrics", "score_candidates_mc", "top_k", "train_lm", "training_windows",
    "user_sequences", "user_states",
]
