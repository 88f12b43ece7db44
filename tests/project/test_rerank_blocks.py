"""Re-ranking a block of users at a time gives the lists of one pass over all users."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from duckrec.ml import rerank

GENRES = ["Action", "Comedy", "Drama", "Horror"]


def _tables(n_users=40, n_items=30, pool=12, seed=3):
    """Two purposes' candidates, histories and per-candidate inputs, over few items, so
    that many users share candidates and the repeat counts matter."""
    rng = np.random.default_rng(seed)
    items = pl.DataFrame({"item_id": np.arange(1, n_items + 1), "title": [f"t{i}" for i in range(1, n_items + 1)],
                          "genres": [[GENRES[i % 4], GENRES[(i * 7) % 4]] for i in range(1, n_items + 1)]})
    cand, hist = [], []
    for purpose in ("holdout", "served"):
        for user in range(1, n_users + 1):
            chosen = rng.choice(n_items, size=pool + 3, replace=False) + 1
            for position, item in enumerate(chosen[:3]):
                hist.append((purpose, user, int(item), position))
            for rank, item in enumerate(chosen[3:], start=1):
                cand.append((purpose, user, rank, int(item), float(1.0 / rank + rng.random() * 0.01)))
    candidates = pl.DataFrame(cand, schema=["purpose", "user_id", "rank", "item_id", "score"], orient="row")
    fit_events = pl.DataFrame(hist, schema=["purpose", "user_id", "item_id", "position"], orient="row")
    uncertainty = candidates.select("purpose", "user_id", "item_id", mc_mean="score",
                                    mc_std=pl.Series(rng.random(candidates.height) * 0.1))
    interests = candidates.select("purpose", "user_id", "item_id",
                                  is_new_interest=pl.Series(rng.random(candidates.height) < 0.6),
                                  probed_interest=pl.col("item_id").map_elements(lambda i: GENRES[i % 4],
                                                                                 return_dtype=pl.Utf8))
    popularity = pl.concat([items.select(pl.lit(p).alias("purpose"), "item_id",
                                         novelty_bits=(pl.col("item_id") % 7 + 1).cast(pl.Float64))
                            for p in ("holdout", "served")])
    segments = candidates.select("purpose", "user_id").unique().with_columns(
        rfm_segment=pl.when(pl.col("user_id") % 3 == 0).then(pl.lit("New")).otherwise(pl.lit("Lost")))
    embeddings = pl.DataFrame({"item_id": np.arange(1, n_items + 1),
                               "embedding": [rng.normal(size=4).tolist() for _ in range(n_items)]})
    return items, candidates, fit_events, uncertainty, interests, popularity, segments, embeddings


def test_user_blocks_cut_each_purpose_in_user_order_within_max_rows():
    counts = pl.DataFrame({"purpose": ["served", "holdout", "holdout", "holdout", "holdout"],
                           "user_id": [5, 9, 1, 4, 7], "rows": [3, 2, 4, 5, 1]})
    blocks = rerank.user_blocks(counts, max_rows=6)
    assert [(b.purpose, b.first_user, b.last_user, b.number, b.rows) for b in blocks] == [
        ("holdout", 1, 1, 0, 4),  # 4 + 5 > 6
        ("holdout", 4, 7, 1, 6),
        ("holdout", 9, 9, 2, 2),
        ("served", 5, 5, 0, 3),
    ]
    # a user with more rows than a block holds is a block of its own, not an endless loop
    assert [b.rows for b in rerank.user_blocks(counts, max_rows=1)] == [4, 5, 1, 2, 3]
    # a purpose that fits whole_up_to stays one block; a larger one is cut at max_rows
    halves = rerank.user_blocks(counts, max_rows=3, whole_up_to=6)
    assert [(b.purpose, b.first_user, b.last_user) for b in halves] == [
        ("holdout", 1, 1), ("holdout", 4, 4), ("holdout", 7, 9), ("served", 5, 5)]
    assert blocks[1].where() == "purpose = 'holdout' and user_id between 4 and 7"
    assert blocks[1].of(counts)["user_id"].to_list() == [4, 7]
    # the first block draws with the seed itself, so a small project is one pass bit for bit
    assert blocks[0].seed(42) == 42 and len({b.seed(42) for b in blocks}) == 3
    with pytest.raises(ValueError, match="missing \\['rows'\\]"):
        rerank.user_blocks(counts.drop("rows"))


@pytest.mark.parametrize("repeat_shown", [True, False])
def test_explore_lists_in_blocks_are_the_lists_of_one_pass(repeat_shown):
    items, candidates, fit_events, uncertainty, interests, popularity, segments, _ = _tables()
    lengths = {"holdout": 6, "served": 4}
    options = dict(seed=7, repeat_penalty=3.0, repeat_shown=repeat_shown, temperature=1.0, novelty_weight=1.0)
    shares = {"New": 0.5}

    def inputs(cands, hist, segs):
        table = rerank.Candidates.from_frame(cands, rerank.purpose_histories(hist))
        slots = rerank.slots_per_group(table.groups, segs, shares, lengths, 0.2)
        return table, slots

    def lists(table, slots, unc, flags, counts=None):
        mean, std = rerank.uncertainty_of(table, unc)
        outside, probes = rerank.interest_flags_of(table, flags)
        return rerank.explore_lists(table, mean, std, outside, probes, slots, lengths,
                                    popularity=rerank.popularity_of(table, popularity), probe_counts=counts,
                                    **options)

    whole = lists(*inputs(candidates, fit_events, segments), uncertainty, interests)
    counts = pl.DataFrame(candidates.group_by("purpose", "user_id").len().rename({"len": "rows"}))
    blocks = rerank.user_blocks(counts, max_rows=100)
    assert len(blocks) > 4
    probe_counts = {}
    if repeat_shown:
        for block in blocks:
            rerank.exposure_counts(*inputs(block.of(candidates), block.of(fit_events), block.of(segments)),
                                   lengths, probe_counts)
    parts = [lists(*inputs(block.of(candidates), block.of(fit_events), block.of(segments)),
                   block.of(uncertainty), block.of(interests), probe_counts) for block in blocks]
    assert pl.concat(parts).equals(whole)
    # the repeat counts did matter: without carrying them the blocks give other lists
    fresh = [lists(*inputs(block.of(candidates), block.of(fit_events), block.of(segments)),
                   block.of(uncertainty), block.of(interests), {}) for block in blocks]
    assert not pl.concat(fresh).equals(whole)


def test_tradeoff_lists_in_blocks_are_the_lists_of_one_pass():
    items, candidates, fit_events, uncertainty, interests, popularity, segments, embeddings = _tables()
    holdout = [f.filter(pl.col("purpose") == "holdout")
               for f in (candidates, fit_events, uncertainty, interests, popularity, segments)]
    candidates, fit_events, uncertainty, interests, popularity, segments = holdout
    settings = rerank.RerankSettings(
        explore_shares={"New": 0.5}, explore_default_share=0.1, explore_repeat_penalty=3.0,
        explore_repeat_shown=True, explore_temperature=1.0, tradeoff_k=5,
        tradeoff_mmr_lambdas=(1.0, 0.5), tradeoff_calibration_lambdas=(0.0, 0.5),
        tradeoff_explore_shares=(0.0, 0.3),
    )
    common = dict(items=items, embeddings=embeddings, item_popularity=popularity, list_length=6, max_rank=8, seed=1)
    whole = rerank.tradeoff_lists(settings, candidates=candidates, fit_events=fit_events, uncertainty=uncertainty,
                                  interests=interests, segments=segments, **common)
    blocks = rerank.user_blocks(candidates.group_by("purpose", "user_id").len().rename({"len": "rows"}),
                                max_rows=70)
    assert len(blocks) > 3
    # the served shares' slots over all users first (0.1 x 6 slots: which users get one
    # depends on every user's candidates, not on a block's)
    slots = rerank.slots_by_user(rerank.Candidates.from_frame(candidates, rerank.purpose_histories(fit_events)),
                                 segments, settings.explore_shares, 6, settings.explore_default_share, seed=1)
    assert {0, 1} <= set(slots.values())
    counts = {}
    for block in blocks:
        rerank.tradeoff_exposure(settings, candidates=block.of(candidates), fit_events=block.of(fit_events),
                                 segments=block.of(segments), list_length=6, probe_counts=counts, seed=1,
                                 segment_slots=slots)
    parts = [rerank.tradeoff_lists(settings, candidates=block.of(candidates), fit_events=block.of(fit_events),
                                   uncertainty=block.of(uncertainty), interests=block.of(interests),
                                   segments=block.of(segments), probe_counts=counts, segment_slots=slots, **common)
             for block in blocks]
    keys = ["strategy", "setting", "user_id", "rank"]
    assert pl.concat(parts).sort(keys).equals(whole.sort(keys))
