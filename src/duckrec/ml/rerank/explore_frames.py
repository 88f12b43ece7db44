"""The exploration lists over the warehouse's frames and their inputs: MC-dropout
uncertainty, new-interest flags, item popularity and slots per user."""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from .batching import RankedRows, _ranked_rows, group_offsets
from .exploration import (
    ExploreRule, Placement, exploit_exposure, exploration_reason, exploration_slots, explore_batch,
)
from .frames import Candidates, _per_candidate, aligned_offsets, lists_frame


def interest_flags_of(candidates: Candidates, interests: pl.DataFrame) -> tuple[np.ndarray, list[str | None]]:
    """Per candidate row: is it a new interest for its user, and the interest it would open,
    from a ``recs.lm_candidate_interests`` frame (purpose, user_id, item_id, is_new_interest,
    probed_interest), where the rule is defined once in SQL, shared with evaluation.

    A candidate without a row means that table is older than ``recs.lm_candidates``: an
    error (rebuild it), never a silent "not new".
    """
    joined = _per_candidate(candidates, interests, {"is_new_interest": pl.Boolean, "probed_interest": pl.Utf8},
                            required=["is_new_interest"], table="lm_candidate_interests", caller="interest_flags_of")
    outside = joined["is_new_interest"].to_numpy().astype(bool)
    probes = [p if new else None for p, new in zip(joined["probed_interest"].to_list(), outside.tolist())]
    return outside, probes


def slots_per_group(groups: pl.DataFrame, segments: pl.DataFrame, shares: Mapping[str, float],
                    k: int | Mapping[str, int], default_share: float,
                    candidates: Candidates | None = None, seed: int = 0) -> np.ndarray:
    """Exploration slots of each (purpose, user) group's list from the user's ``rfm_segment``
    for that purpose (``segments``: purpose, user_id, rfm_segment, e.g.
    ``features.user_rfm_by_purpose``); ``k`` is the list length, one for all or per purpose.

    Without ``candidates``: ``round(share * k)`` slots per user (:func:`exploration_slots`).
    With ``candidates`` (whose ``groups`` these are): a share that is not a whole number of
    slots is kept exactly over the users: each user of the group gets ``floor(share * k)``
    slots and the fraction ``share * k - floor(share * k)`` of them (by count, within each
    purpose and share) one more: those whose candidate that slot would push out of the list
    scores lowest, so the list that gives up the least expected hit explores first (ties in
    a seeded order of user ids). A re-ranker's share can then move in small steps (0.075 of
    20 slots: every user 1, half of them 2) instead of jumping a whole slot for every user."""
    missing = sorted({"purpose", "user_id", "rfm_segment"} - set(segments.columns))
    if missing:
        raise ValueError(f"slots_per_group: expected segments with purpose, user_id, rfm_segment, found "
                         f"{segments.columns} (missing {missing})")
    segment_of = {
        (p, int(u)): s
        for p, u, s in zip(segments["purpose"].to_list(), segments["user_id"].cast(pl.Int64).to_list(),
                           segments["rfm_segment"].to_list())
    }
    purposes, users = groups["purpose"].to_list(), groups["user_id"].to_list()
    if candidates is None:
        return np.array([exploration_slots(segment_of.get((p, int(u))), shares, _length_of(k, p), default_share)
                         for p, u in zip(purposes, users)], dtype=np.int64)
    if candidates.groups.height != groups.height:
        raise ValueError(f"slots_per_group: expected the candidates of these {groups.height} groups, "
                         f"found {candidates.groups.height}")
    lengths = np.array([_length_of(k, p) for p in purposes], dtype=np.int64)
    wanted = np.empty(len(purposes))
    for i, (p, u) in enumerate(zip(purposes, users)):
        exploration_slots(segment_of.get((p, int(u))), shares, int(lengths[i]), default_share)  # checks the share
        segment = segment_of.get((p, int(u)))
        share = shares.get(segment, default_share) if segment is not None else default_share
        wanted[i] = float(share) * lengths[i]
    base = np.floor(wanted + 1e-9)
    fraction = np.clip(wanted - base, 0.0, 1.0)
    slots = np.minimum(base, lengths).astype(np.int64)
    # the score of the exploit candidate one more slot would push out: rank length - base
    scores = candidates.frame["score"].to_numpy().astype(np.float64)
    offsets = candidates.offsets
    sizes = np.diff(offsets)
    at = lengths - slots - 1
    cost = np.where((at >= 0) & (at < sizes), scores[np.clip(offsets[:-1] + at, 0, max(scores.size - 1, 0))]
                    if scores.size else 0.0, 0.0)
    order_key = np.array([zlib.crc32(f"{seed}:{p}:{u}".encode()) for p, u in zip(purposes, users)], dtype=np.int64)
    extra = fraction > 1e-9
    classes = {}
    for i in np.flatnonzero(extra):
        classes.setdefault((purposes[i], round(float(fraction[i]), 9)), []).append(i)
    for (_, frac), members in classes.items():
        members = np.array(members)
        take = int(np.floor(frac * members.size + 0.5))
        if take:
            ranked = members[np.lexsort((order_key[members], cost[members]))]
            slots[ranked[:take]] += 1
    return np.minimum(slots, lengths)


def slots_by_user(candidates: Candidates, segments: pl.DataFrame, shares: Mapping[str, float],
                  k: int | Mapping[str, int], default_share: float, seed: int = 0) -> dict[tuple[str, int], int]:
    """(purpose, user_id) -> exploration slots of :func:`slots_per_group` over all of
    ``candidates``' users at once: a caller that builds lists a block of users at a time
    computes this first and looks each block's slots up (:func:`slots_of`), so which users
    get a share's extra slot does not depend on the blocks. Only each user's first
    ``max(k)`` candidates decide it: pass just those (``rank <= max(k)``) to save memory."""
    slots = slots_per_group(candidates.groups, segments, shares, k, default_share, candidates=candidates, seed=seed)
    return dict(zip(zip(candidates.groups["purpose"].to_list(), candidates.groups["user_id"].to_list()),
                    slots.tolist()))


def slots_of(groups: pl.DataFrame, by_user: Mapping[tuple[str, int], int]) -> np.ndarray:
    """Slots of each (purpose, user) of ``groups`` from :func:`slots_by_user` (0 for a user it lacks)."""
    return np.array([by_user.get((p, int(u)), 0) for p, u in zip(groups["purpose"].to_list(),
                                                                  groups["user_id"].to_list())], dtype=np.int64)


def _length_of(k: int | Mapping[str, int], purpose: str) -> int:
    if isinstance(k, Mapping):
        if purpose not in k:
            raise ValueError(f"list length: expected a length for purpose {purpose!r}, found only {sorted(k)}")
        return int(k[purpose])
    return int(k)


def explore_lists(
    candidates: Candidates,
    mean: np.ndarray,
    std: np.ndarray,
    outside: np.ndarray,
    probes: Sequence[str | None],
    n_slots: np.ndarray | int,
    k: int | Mapping[str, int],
    rule: ExploreRule = "ucb",
    beta: float = 1.0,
    seed: int = 0,
    placement: Placement = "spread",
    distinct_interests: bool = True,
    repeat_penalty: float = 0.0,
    strategy: str = "lm_explore",
    popularity: np.ndarray | None = None,
    novelty_weight: float = 0.0,
    temperature: float = 0.0,
    repeat_shown: bool = False,
    probe_counts: dict | None = None,
) -> pl.DataFrame:
    """:func:`explore` lists for every (purpose, user): exploit slots in the LM's score order,
    exploration slots by ``rule`` over ``mean``/``std`` (one per probed interest first when
    ``distinct_interests``), each with its reason and the genre it probes in
    ``probed_interest`` (NULL on exploit slots); columns ``EXPLORE_LIST_SCHEMA``. ``k`` is the
    list length, one for all or per purpose (:func:`list_lengths`). ``repeat_penalty`` (see
    :func:`explore_batch`) counts the probes of each purpose apart, users in id order, and with
    ``repeat_shown`` the items that purpose's exploit slots show too.
    ``popularity`` (per candidate row, :func:`popularity_of`), ``novelty_weight`` and
    ``temperature`` are :func:`explore`'s; ``propensity`` is each slot's probability
    (:func:`explore_with_propensity`).

    A caller that goes through the users in blocks (:mod:`.blocks`) passes one
    ``probe_counts`` dict to every block's call, counted by :func:`exposure_counts` over all
    blocks first when ``repeat_shown``: the counts run on from block to block, and the lists
    are those of one call over all the users."""
    users = candidates.groups["user_id"].to_numpy()
    purposes = candidates.groups["purpose"].to_list()
    purpose_keys = np.array([zlib.crc32(p.encode()) for p in purposes], dtype=np.int64)
    slots = np.broadcast_to(np.asarray(n_slots, dtype=np.int64), (len(purposes),))
    interest_ids = _interest_ids(probes) if distinct_interests else None
    scores = candidates.frame["score"].to_numpy()
    item_ids = candidates.item_ids()
    parts = []
    # groups are sorted by purpose, so each purpose is one run of groups and one row range
    group_runs = group_offsets(np.asarray(purposes, dtype=object)) if purposes else np.zeros(1, np.int64)
    for first, last in zip(group_runs[:-1].tolist(), group_runs[1:].tolist()):
        row0, row1 = int(candidates.offsets[first]), int(candidates.offsets[last])
        part = explore_batch(
            candidates.offsets[first : last + 1] - row0,
            mean[row0:row1],
            std[row0:row1],
            outside[row0:row1],
            _length_of(k, purposes[first]),
            slots[first:last],
            rule=rule,
            beta=beta,
            seed=seed,
            group_keys=np.stack([purpose_keys[first:last], users[first:last]], axis=1),
            exploit_scores=scores[row0:row1],
            placement=placement,
            interests=None if interest_ids is None else interest_ids[row0:row1],
            item_keys=item_ids[row0:row1],
            repeat_penalty=repeat_penalty,
            popularity=None if popularity is None else popularity[row0:row1],
            novelty_weight=novelty_weight,
            temperature=temperature,
            repeat_shown=repeat_shown,
            times_probed=None if probe_counts is None else probe_counts.setdefault(purposes[first], {}),
        )
        parts.append(RankedRows(part.rows + row0, part.group + first, part.rank, part.is_exploration, part.propensity))
    ranked = _ranked_rows(
        [p.rows for p in parts], [p.group for p in parts], [p.rank for p in parts], [p.is_exploration for p in parts]
    )
    propensity = np.concatenate([p.propensity for p in parts]) if parts else np.zeros(0)
    probed = [probes[r] if flag else None for r, flag in zip(ranked.rows.tolist(), ranked.is_exploration.tolist())]
    reasons = [
        exploration_reason(p or "another interest", float(mean[r]), float(std[r])) if flag else None
        for r, flag, p in zip(ranked.rows.tolist(), ranked.is_exploration.tolist(), probed)
    ]
    lists = lists_frame(candidates, ranked, strategy, reasons)
    at = lists.get_column_index("reason")
    return lists.insert_column(at, pl.Series("propensity", propensity, dtype=pl.Float64)).insert_column(
        at, pl.Series("probed_interest", probed, dtype=pl.Utf8)
    )


def exposure_counts(candidates: Candidates, n_slots: np.ndarray | int, k: int | Mapping[str, int],
                    counts: dict | None = None) -> dict:
    """Per purpose, how many lists' exploit slots show each item (the start of
    :func:`explore_lists`'s repeat counts with ``repeat_shown``), added to ``counts``."""
    counts = {} if counts is None else counts
    purposes = candidates.groups["purpose"].to_list()
    slots = np.broadcast_to(np.asarray(n_slots, dtype=np.int64), (len(purposes),))
    scores = candidates.frame["score"].to_numpy()
    items = candidates.item_ids()
    runs = group_offsets(np.asarray(purposes, dtype=object)) if purposes else np.zeros(1, np.int64)
    for first, last in zip(runs[:-1].tolist(), runs[1:].tolist()):
        row0, row1 = int(candidates.offsets[first]), int(candidates.offsets[last])
        exploit_exposure(candidates.offsets[first : last + 1] - row0, scores[row0:row1], items[row0:row1],
                         _length_of(k, purposes[first]), slots[first:last],
                         counts.setdefault(purposes[first], {}))
    return counts


def popularity_of(candidates: Candidates, item_popularity: pl.DataFrame) -> np.ndarray:
    """Per candidate row, the share of its purpose's users who know the item, from
    ``features.item_popularity`` (purpose, item_id, novelty_bits): ``2 ** -novelty_bits``, so an
    item nobody touched counts as known to one user, as novelty does. Always > 0."""
    keys = ["purpose", "item_id"]
    bits = item_popularity.select("purpose", pl.col("item_id").cast(pl.Int64), pl.col("novelty_bits").cast(pl.Float64))
    joined = candidates.frame.select(keys).join(bits.unique(keys, keep="first"), on=keys, how="left",
                                                maintain_order="left")
    missing = joined.filter(pl.col("novelty_bits").is_null())
    if missing.height:
        purpose, item = missing.row(0)[:2]
        raise ValueError(
            f"popularity_of: {missing.height} of {joined.height} candidates have no novelty_bits in item_popularity "
            f"(e.g. purpose {purpose!r}, item {item}); rebuild it after lm_candidates"
        )
    return np.exp2(-joined["novelty_bits"].to_numpy())


def _interest_ids(probes: Sequence[str | None]) -> np.ndarray:
    """An id per probe, numbered in order of first appearance (None is one interest too)."""
    values = pl.Series("p", list(probes), dtype=pl.Utf8)
    if values.len() == 0:
        return np.zeros(0, dtype=np.int64)
    # a null and any string are told apart by the null flag in the key
    key = pl.DataFrame({"p": values, "none": values.is_null()})
    first = key.with_row_index("row").group_by("p", "none", maintain_order=True).agg(pl.col("row").first())
    ids = key.join(first.with_row_index("id"), on=["p", "none"], how="left", maintain_order="left", nulls_equal=True)
    return ids["id"].to_numpy().astype(np.int64)


def history_sequences(lm, groups: pl.DataFrame, histories: pl.DataFrame) -> list[np.ndarray]:
    """Each group's history (``histories``: purpose, user_id, item_id in position order) as
    the LM's 1-based item indices, items outside its catalogue left out: what
    ``recs.lm_candidates`` scored each (purpose, user) from."""
    history, offsets = aligned_offsets(groups, histories)
    items = history["item_id"].to_numpy()
    known = np.isin(items, lm.catalogue.item_ids)
    index = np.zeros(items.size, dtype=np.int64)
    index[known] = lm.catalogue.index(items[known])
    return [h[h > 0] for h in np.split(index, offsets[1:-1])] if groups.height else []


def candidate_uncertainty(
    lm, candidates: Candidates, histories: pl.DataFrame, passes: int, seed: int, threads: int | None = None,
    progress=None, ngrams: Mapping[str, object] | None = None, seeds: Mapping[str, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """MC-dropout mean and spread of the LM's probability for every candidate row
    (:func:`duckrec.ml.score.score_candidates_mc`), each (purpose, user) scored from its
    purpose's history, as ``recs.lm_candidates`` was: per purpose, the n-gram half counts
    over the histories of that purpose's candidate users. Items outside the LM's catalogue get 0, 0.

    The purposes run at once, one thread each, each on one torch thread, at most ``threads``
    of them (default: the CPUs this process may use): independent single-threaded loops
    share a busy host gracefully, where one loop's per-step parallel regions collapse. Each
    purpose's dropout masks come from its own generator seeded by ``seed`` (or
    ``seeds[purpose]``), so the figures do not depend on how many run at once.

    A caller that goes through a purpose's users in blocks (:mod:`.blocks`) passes each
    purpose's n-gram half counted once over all its candidate users in ``ngrams``
    (``lm.mixture.fit_ngram(history_sequences(...), lm.catalogue.n_items)``) and each block's
    seed in ``seeds``; without them a call counts over, and seeds, what it is given.
    """
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from ..score import FIT, score_candidates_mc
    from ..threads import pick_threads, torch_threads

    mean = np.zeros(candidates.frame.height)
    std = np.zeros(candidates.frame.height)
    catalogue_ids = lm.catalogue.item_ids
    sequences = history_sequences(lm, candidates.groups, histories)
    cand_items = candidates.item_ids()
    known_cand = np.isin(cand_items, catalogue_ids)
    cand_index = np.zeros(cand_items.size, dtype=np.int64)
    cand_index[known_cand] = lm.catalogue.index(cand_items[known_cand])
    purposes = candidates.groups["purpose"].to_numpy()
    jobs = []
    lock = threading.Lock()
    for purpose in sorted(set(purposes.tolist())):
        group_ids = np.flatnonzero(purposes == purpose)
        seqs = [sequences[g] for g in group_ids]
        sizes = candidates.offsets[group_ids + 1] - candidates.offsets[group_ids]
        width = max(int(sizes.max()), 1)
        block = np.zeros((group_ids.size, width), dtype=np.int64)
        column = np.arange(width)
        valid = column[None, :] < sizes[:, None]
        rows = candidates.offsets[group_ids][:, None] + column[None, :]
        block[valid] = cand_index[rows[valid]]
        ngram = FIT if ngrams is None or purpose not in ngrams else ngrams[purpose]
        job_seed = seed if seeds is None or purpose not in seeds else int(seeds[purpose])
        jobs.append((purpose, seqs, block, rows, valid, ngram, job_seed))

    def run(job):
        purpose, seqs, block, rows, valid, ngram, job_seed = job

        def report(task, *args, **kwargs):
            if progress is not None:
                with lock:  # one progress line at a time
                    progress(f"{purpose} {task}", *args, **kwargs)

        m, s = score_candidates_mc(lm, seqs, block, passes=passes, seed=job_seed, threads=None, progress=report,
                                   ngram=ngram)
        mean[rows[valid]] = m[valid]
        std[rows[valid]] = s[valid]

    workers = max(1, min(len(jobs), pick_threads(threads, follow_load=False)))
    model = lm.model
    was_training = model.training
    model.eval()  # dropout is drawn by each job's generator, never torch's global one
    try:
        with torch_threads(1):
            if workers == 1:
                for job in jobs:
                    run(job)
            else:
                with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="duckrec-mc") as pool:
                    list(pool.map(run, jobs))  # list(): re-raises a job's exception here
    finally:
        model.train(was_training)
    return mean, std


UNCERTAINTY_SCHEMA: dict[str, pl.DataType] = {
    "purpose": pl.Utf8,
    "user_id": pl.Int64,
    "item_id": pl.Int64,
    "mc_mean": pl.Float64,
    "mc_std": pl.Float64,
}


def uncertainty_frame(candidates: Candidates, mean: np.ndarray, std: np.ndarray) -> pl.DataFrame:
    """``recs.lm_candidate_uncertainty``: one (purpose, user_id, item_id, mc_mean, mc_std) row
    per candidate row."""
    frame = candidates.frame
    return pl.DataFrame(
        {
            "purpose": frame["purpose"],
            "user_id": frame["user_id"],
            "item_id": frame["item_id"],
            "mc_mean": pl.Series(np.asarray(mean, dtype=np.float64)),
            "mc_std": pl.Series(np.asarray(std, dtype=np.float64)),
        },
        schema=UNCERTAINTY_SCHEMA,
    )


def uncertainty_of(candidates: Candidates, uncertainty: pl.DataFrame,
                   needed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(mc_mean, mc_std) of every candidate row from a ``recs.lm_candidate_uncertainty`` frame.

    ``needed`` (per candidate row; default all) marks the rows a list reads: exploration reads
    only the candidates that open a new interest (``outside``), which is all the table scores.
    A needed candidate without a row means the table is older than ``recs.lm_candidates``:
    that is an error (rebuild lm_candidate_uncertainty), never a silent zero; the other rows
    get 0, 0, which no list reads.
    """
    columns = {"mc_mean": pl.Float64, "mc_std": pl.Float64}
    if needed is None:
        joined = _per_candidate(candidates, uncertainty, columns, required=["mc_mean", "mc_std"],
                                table="lm_candidate_uncertainty", caller="uncertainty_of")
        return joined["mc_mean"].to_numpy(), joined["mc_std"].to_numpy()
    needed = np.asarray(needed, dtype=bool)
    subset = Candidates(candidates.frame.filter(pl.Series(needed)), candidates.offsets, candidates.groups)
    joined = _per_candidate(subset, uncertainty, columns, required=["mc_mean", "mc_std"],
                            table="lm_candidate_uncertainty", caller="uncertainty_of")
    mean, std = np.zeros(needed.size), np.zeros(needed.size)
    mean[needed], std[needed] = joined["mc_mean"].to_numpy(), joined["mc_std"].to_numpy()
    return mean, std
