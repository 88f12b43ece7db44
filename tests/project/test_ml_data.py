"""duckrec.ml.data: the frames lm_checkpoints reads, turned into what train_lm takes."""
from __future__ import annotations

import polars as pl
import pytest

from duckrec.ml.data import content_tokens, training_data

ITEMS = pl.DataFrame({"item_id": [10, 20, 30], "genres": [["Drama", "Comedy"], ["Drama"], None]})
TAGS = pl.DataFrame({"item_id": [20, 30, 30], "tag": ["  Funny ", "funny", "Dark"]})


def test_content_tokens_prefix_lowercase_and_strip():
    rows = sorted(content_tokens(ITEMS, TAGS).iter_rows())
    assert rows == [(10, "genre:comedy"), (10, "genre:drama"), (20, "genre:drama"), (20, "tag:funny"),
                    (30, "tag:dark"), (30, "tag:funny")]


def test_training_data_sequences_and_valid_events():
    events = pl.DataFrame({
        "user_id":  [1, 1, 1, 1, 2, 3],
        "item_id":  [20, 10, 30, 20, 10, 30],
        "position": [2, 1, 3, 4, 1, 1],
        "split":    ["train", "train", "valid", "test", "valid", "train"],
    })
    data = training_data(events, ITEMS, TAGS)
    # tokens on one item only are dropped: genre:comedy and tag:dark
    assert data.catalogue.token_names == ("genre:drama", "tag:funny")
    assert data.index.tolist() == [2, 1, 3, 2, 1, 3]
    assert data.train_users.tolist() == [1, 3]
    assert [s.tolist() for s in data.train_seqs] == [[1, 2], [3]]  # user 1 ordered by position
    # user 2's valid event has no train history: not a valid event
    assert data.valid.tolist() == [False, False, True, False, False, False]
    assert [h.tolist() for h in data.valid_histories] == [[1, 2]]
    assert data.valid_targets.tolist() == [3]


def test_unknown_event_item_names_the_column():
    events = pl.DataFrame({"user_id": [1], "item_id": [99], "position": [1], "split": ["train"]})
    with pytest.raises(ValueError, match=r"fit_events.item_id: .*unknown ids \[99\]"):
        training_data(events, ITEMS, TAGS)
