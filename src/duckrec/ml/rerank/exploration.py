"""Exploration: slots of a list given to uncertain candidates of new interests (UCB or
Thompson, long tail, sampling with logged propensities), and where in the list they go."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from .batching import RankedRows, _as_vector, _check_k, _check_offsets, _ranked_rows


ExploreRule = Literal["ucb", "thompson"]

Placement = Literal["spread", "tail"]


def exploration_slots(
    segment: str | None, shares: Mapping[str, float], k: int, default_share: float = 0.2
) -> int:
    """Number of the ``k`` slots a user of ``segment`` gives to exploration.

    ``round(share * k)`` with halves rounded up (so a 0.25 share of 10 slots is 3, not
    Python's banker's 2), clamped to [0, k]; segments missing from ``shares`` (or None)
    use ``default_share``.
    """
    _check_k(k)
    share = shares.get(segment, default_share) if segment is not None else default_share
    share = float(share)
    if not 0.0 <= share <= 1.0 or math.isnan(share):
        raise ValueError(
            f"exploration_slots: the share for segment {segment!r} must be in [0, 1], found {share}"
        )
    return int(min(max(math.floor(share * k + 0.5), 0), k))


def exploration_positions(length: int, n_slots: int, placement: Placement = "spread") -> np.ndarray:
    """0-based positions of ``n_slots`` exploration slots in a list of ``length``.

    ``spread`` (the default) cuts the list into ``n_slots`` equal blocks and makes the last
    slot of each block a probe. Every prefix of the list then carries about its share of
    probes, so a list built once at the largest K and cut at K=5, 10 or 20 explores at the
    same rate at every K; inside a block the probe takes the cheapest slot (the smallest
    rank discount), and the first slot stays the best exploit item. ``tail`` puts all probes
    last: the cheapest in NDCG at the full length, but a shorter cut of the list may show
    no probe at all.
    """
    if n_slots < 0 or length < 0 or n_slots > length:
        raise ValueError(
            f"exploration_positions: expected 0 <= n_slots <= length, found n_slots={n_slots}, "
            f"length={length}"
        )
    if placement == "tail":
        return np.arange(length - n_slots, length, dtype=np.int64)
    if placement == "spread":
        # ceil((j + 1) * length / n_slots) - 1, in integers
        return np.array(
            [-(-(j + 1) * length // n_slots) - 1 for j in range(n_slots)], dtype=np.int64
        )
    raise ValueError(f"exploration_positions: placement must be 'spread' or 'tail', found {placement!r}")


def explore(
    mean: np.ndarray,
    std: np.ndarray,
    outside_top_interests: np.ndarray,
    k: int,
    n_slots: int,
    **options: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """One user's list with ``n_slots`` of its ``k`` slots given to exploration; ``options``
    are the keyword settings of :func:`explore_with_propensity` (rule, beta, rng,
    exploit_scores, placement, interests, rank_penalty, popularity, novelty_weight,
    temperature), described here.

    The exploit slots keep the order of ``exploit_scores`` (default ``mean``). The
    exploration slots go to candidates outside the user's top interests that the exploit
    slots did not already take, best first by the upper confidence bound
    ``mean + beta * std`` (``rule='ucb'``) or by one Thompson draw from N(mean, std)
    (``rule='thompson'``, needs ``rng``); they are placed as :func:`exploration_positions`
    says. Fallbacks: with fewer than ``k`` candidates the list is shorter; with fewer
    eligible candidates than ``n_slots`` the missing slots go back to the exploit order.
    With ``interests`` (an id per candidate: the interest it would probe) the probes go
    first to the best candidate of each distinct interest, then to the next best of any,
    so a list's probes test several new interests rather than one several times.
    ``rank_penalty`` (per candidate) is added to each eligible candidate's place in the
    value order (0 = best) before the probes are chosen; :func:`explore_batch` uses it to
    push down items other users already probe.

    Long tail: with ``novelty_weight`` w > 0 (needs ``popularity``, per candidate the share
    of users who know the item, > 0) the value is ``log(ucb) - w * log(popularity)``, i.e.
    the bound divided by popularity**w: w = 1 ranks by lift over the average user, so an
    item only this user is likely to like beats one everybody likes.
    Sampling: with ``temperature`` T > 0 (needs ``rng``) each probe is drawn, without
    replacement, from the remaining eligible candidates with probability proportional to
    ``exp(-place / T)``, ``place`` its 0-based place in the probe order above; T = 0 takes
    the order as it is. :func:`explore_with_propensity` also returns each probe's
    probability.
    Returns (candidate positions, is_exploration flags), both of the list's length.
    """
    order, flags, _ = explore_with_propensity(mean, std, outside_top_interests, k, n_slots, **options)
    return order, flags


def explore_with_propensity(
    mean: np.ndarray,
    std: np.ndarray,
    outside_top_interests: np.ndarray,
    k: int,
    n_slots: int,
    rule: ExploreRule = "ucb",
    beta: float = 1.0,
    rng: np.random.Generator | None = None,
    exploit_scores: np.ndarray | None = None,
    placement: Placement = "spread",
    interests: np.ndarray | None = None,
    rank_penalty: np.ndarray | None = None,
    popularity: np.ndarray | None = None,
    novelty_weight: float = 0.0,
    temperature: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`explore`, plus per slot the probability with which the policy put that item
    there: for a probe, the probability of drawing it given the probes drawn before it
    (1.0 when ``temperature`` is 0, the policy then being deterministic); for an exploit
    slot 1.0 (the exploit slots follow from the scores alone). Thompson draws have no
    closed-form probability: their probes carry NaN."""
    mean = _as_vector("mean", mean)
    n = mean.size
    std = _as_vector("std", std, size=n)
    outside = _as_vector("outside_top_interests", outside_top_interests, size=n).astype(bool)
    exploit = mean if exploit_scores is None else _as_vector("exploit_scores", exploit_scores, size=n)
    _check_k(k)
    if n_slots < 0:
        raise ValueError(f"explore: n_slots must be >= 0, found {n_slots}")
    if rule not in ("ucb", "thompson"):
        raise ValueError(f"explore: rule must be 'ucb' or 'thompson', found {rule!r}")
    if (std < 0).any():
        raise ValueError("explore: std must be >= 0, found a negative spread")
    if rule == "thompson" and rng is None:
        raise ValueError("explore: rule='thompson' needs a seeded numpy Generator as rng, found None")
    if novelty_weight < 0 or math.isnan(novelty_weight):
        raise ValueError(f"explore: novelty_weight must be >= 0, found {novelty_weight}")
    if novelty_weight > 0 and popularity is None:
        raise ValueError("explore: novelty_weight > 0 needs popularity (per candidate), found None")
    if temperature < 0 or math.isnan(temperature):
        raise ValueError(f"explore: temperature must be >= 0, found {temperature}")
    if temperature > 0 and rng is None:
        raise ValueError("explore: temperature > 0 needs a seeded numpy Generator as rng, found None")

    length = min(k, n)
    n_slots = min(n_slots, length)
    exploit_order = np.argsort(-exploit, kind="stable")
    exploit_taken = exploit_order[: length - n_slots]
    eligible = outside.copy()
    eligible[exploit_taken] = False
    candidates = np.flatnonzero(eligible)
    if rule == "ucb":
        value = mean[candidates] + beta * std[candidates]
    else:
        value = rng.normal(mean[candidates], std[candidates])
    if novelty_weight > 0:
        share = _as_vector("popularity", popularity, size=n)[candidates].astype(np.float64)
        if (share <= 0).any():
            raise ValueError("explore: popularity must be > 0 for every candidate, found a share <= 0")
        value = np.log(np.maximum(value, 1e-300)) - novelty_weight * np.log(share)
    by_value = candidates[np.argsort(-value, kind="stable")]
    if rank_penalty is not None:
        penalty = _as_vector("rank_penalty", rank_penalty, size=n)[by_value]
        by_value = by_value[np.argsort(np.arange(by_value.size) + penalty, kind="stable")]
    if interests is not None:
        probed = _as_vector("interests", interests, size=n)[by_value]
        _, first_of_each = np.unique(probed, return_index=True)
        firsts = np.zeros(by_value.size, dtype=bool)
        firsts[first_of_each] = True
        by_value = np.concatenate([by_value[firsts], by_value[~firsts]])
    if temperature > 0:
        probes, chance = _draw_in_order(by_value, n_slots, temperature, rng)
    else:
        probes = by_value[:n_slots]
        chance = np.full(probes.size, np.nan if rule == "thompson" else 1.0)

    exploit_fill = exploit_order[~np.isin(exploit_order, probes)][: length - probes.size]
    order = np.empty(length, dtype=np.int64)
    flags = np.zeros(length, dtype=bool)
    positions = exploration_positions(length, probes.size, placement)
    flags[positions] = True
    order[positions] = probes
    order[~flags] = exploit_fill
    propensity = np.ones(length)
    propensity[positions] = chance
    return order, flags, propensity


def _draw_in_order(order: np.ndarray, n: int, temperature: float, rng: np.random.Generator):
    """``n`` draws without replacement from ``order``, place p weighted ``exp(-p / T)``;
    returns the drawn entries and each one's probability at its draw."""
    weights = np.exp(-np.arange(order.size) / temperature)
    left = np.ones(order.size, dtype=bool)
    picked, chance = [], []
    for _ in range(min(n, order.size)):
        w = np.where(left, weights, 0.0)
        p = w / w.sum()
        j = int(rng.choice(order.size, p=p))
        picked.append(order[j])
        chance.append(float(p[j]))
        left[j] = False
    return np.asarray(picked, dtype=np.int64), np.asarray(chance, dtype=np.float64)


def explore_batch(
    offsets: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    outside_top_interests: np.ndarray,
    k: int,
    n_slots: np.ndarray | int,
    rule: ExploreRule = "ucb",
    beta: float = 1.0,
    seed: int = 0,
    group_keys: np.ndarray | None = None,
    exploit_scores: np.ndarray | None = None,
    placement: Placement = "spread",
    interests: np.ndarray | None = None,
    item_keys: np.ndarray | None = None,
    repeat_penalty: float = 0.0,
    popularity: np.ndarray | None = None,
    novelty_weight: float = 0.0,
    temperature: float = 0.0,
    repeat_shown: bool = False,
    times_probed: dict | None = None,
) -> RankedRows:
    """:func:`explore` for every group; ``n_slots`` is one count per group (or one for all).

    Each group draws from its own generator seeded by ``(seed, *group_keys[g])`` (default
    key: the group number), so a user's Thompson draws do not change when other users are
    added to or dropped from the batch.

    With ``repeat_penalty > 0`` (needs ``item_keys``, the item of each row) an item that
    earlier groups already probe ``r`` times moves ``repeat_penalty * r`` places down a
    group's probe order. Without it every user probes the same few popular items of an
    interest and exploration adds almost no coverage; the price is that a list then
    depends on the groups before it (still the same list for the same batch).
    With ``repeat_shown`` the count starts from the items every group's exploit slots show
    (its first ``length - n_slots`` items in ``exploit_scores`` order, all groups counted
    before the first probe is chosen), so a probe goes first to an item that no list shows
    yet: a probe of an item another user is shown anyway adds nothing to coverage.

    ``times_probed`` (item key -> count) is where the counts start and go on: a caller that
    goes through the groups in several calls passes the same dict to each, having counted
    the exposure of every call's exploit slots into it first (:func:`exploit_exposure`);
    then ``repeat_shown`` counts nothing here.
    """
    offsets = _check_offsets(offsets, len(mean))
    n_groups = offsets.size - 1
    mean = _as_vector("mean", mean)
    std = _as_vector("std", std, size=mean.size)
    outside = _as_vector("outside_top_interests", outside_top_interests, size=mean.size).astype(bool)
    exploit = None if exploit_scores is None else _as_vector("exploit_scores", exploit_scores, size=mean.size)
    slots = np.broadcast_to(np.asarray(n_slots, dtype=np.int64), (n_groups,))
    keys = _group_seed_keys(group_keys, n_groups)
    if repeat_penalty < 0:
        raise ValueError(f"explore_batch: repeat_penalty must be >= 0, found {repeat_penalty}")
    if repeat_penalty > 0 and item_keys is None:
        raise ValueError("explore_batch: repeat_penalty needs item_keys (the item of each row), found None")
    items = None if item_keys is None else _as_vector("item_keys", item_keys, size=mean.size)
    if times_probed is None:
        times_probed = {}
        if repeat_penalty > 0 and repeat_shown:
            exploit_exposure(offsets, mean if exploit is None else exploit, items, k, slots, times_probed)

    share = None if popularity is None else _as_vector("popularity", popularity, size=mean.size)
    if repeat_penalty > 0:  # the counts as an array over this batch's items, back into the dict at the end
        keyed, item_at = np.unique(items, return_inverse=True)
        probed = np.array([times_probed.get(i, 0) for i in keyed.tolist()], dtype=np.int64)
    rows, ranks, groups, flags, chances = [], [], [], [], []
    for g in range(n_groups):
        start, stop = int(offsets[g]), int(offsets[g + 1])
        rng = np.random.default_rng([seed, *keys[g]]) if rule == "thompson" or temperature > 0 else None
        penalty = None
        if repeat_penalty > 0:
            penalty = repeat_penalty * probed[item_at[start:stop]].astype(np.float64)
        order, is_probe, chance = explore_with_propensity(
            mean[start:stop],
            std[start:stop],
            outside[start:stop],
            k,
            int(slots[g]),
            rule=rule,
            beta=beta,
            rng=rng,
            exploit_scores=None if exploit is None else exploit[start:stop],
            placement=placement,
            interests=None if interests is None else interests[start:stop],
            rank_penalty=penalty,
            popularity=None if share is None else share[start:stop],
            novelty_weight=novelty_weight,
            temperature=temperature,
        )
        if repeat_penalty > 0:
            np.add.at(probed, item_at[start:stop][order[is_probe]], 1)
        rows.append(order + start)
        ranks.append(np.arange(1, order.size + 1))
        groups.append(np.full(order.size, g))
        flags.append(is_probe)
        chances.append(chance)
    if repeat_penalty > 0:
        for i, count in zip(keyed.tolist(), probed.tolist()):
            if count:
                times_probed[i] = count
    ranked = _ranked_rows(rows, groups, ranks, flags)
    propensity = np.concatenate(chances).astype(np.float64) if chances else np.zeros(0)
    return RankedRows(ranked.rows, ranked.group, ranked.rank, ranked.is_exploration, propensity)


def exploit_exposure(offsets: np.ndarray, exploit: np.ndarray, items: np.ndarray, k: int,
                     slots: np.ndarray, shown: dict | None = None) -> dict:
    """How many groups' exploit slots show each item: per group the first
    ``min(k, size) - n_slots`` candidates by ``exploit`` (stable), added to ``shown``."""
    shown = {} if shown is None else shown
    for g in range(offsets.size - 1):
        start, stop = int(offsets[g]), int(offsets[g + 1])
        n_exploit = max(min(k, stop - start) - int(slots[g]), 0)
        top = np.argsort(-exploit[start:stop], kind="stable")[:n_exploit]
        for i in items[start:stop][top].tolist():
            shown[i] = shown.get(i, 0) + 1
    return shown


def _group_seed_keys(group_keys: np.ndarray | None, n_groups: int) -> list[tuple[int, ...]]:
    if group_keys is None:
        return [(g,) for g in range(n_groups)]
    keys = np.asarray(group_keys)
    if keys.ndim == 1:
        keys = keys[:, None]
    if keys.shape[0] != n_groups:
        raise ValueError(
            f"explore_batch: expected one group key per group ({n_groups}), found {keys.shape[0]}"
        )
    if not np.issubdtype(keys.dtype, np.integer) or (keys < 0).any():
        raise ValueError("explore_batch: group_keys must be non-negative integers (they seed the draws)")
    return [tuple(int(v) for v in row) for row in keys]


def exploration_reason(interest: str, mean: float, spread: float) -> str:
    """The ``reason`` of an exploration slot: the interest it probes, its mean and spread.

    Two significant digits, because next-item probabilities are often far below 0.01.
    """
    return f"explore {interest} (mean {mean:.2g}, spread {spread:.2g})"
