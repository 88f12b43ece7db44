"""The perturbation behind "the evaluation must not see the test events".

`perturb(ratings, tags, movies, split_rule)` replaces every test event of every user with an
item that user never rated or tagged, at the same timestamp and value, and drops that user's
tags on the item it replaced. A build from the perturbed seeds must give exactly the same
eval.holdout_recommendations as the original: the holdout lists may depend on the fit events
only. The replacement keeps the event's place in the user's order (an item id above the ids
of the events it ties with), so the split itself, which orders ties by item id, is unchanged.
"""
from __future__ import annotations

import random
from collections import defaultdict


def test_events(ratings: list[tuple], split_rule: str = "leave_last_out", cutoff: int | None = None) -> set[int]:
    """Row numbers of `ratings` (userId, movieId, rating, timestamp) in the test split."""
    if split_rule == "temporal":
        return {i for i, r in enumerate(ratings) if r[3] >= cutoff}
    per_user = defaultdict(list)
    for i, (user, item, value, t) in enumerate(ratings):
        per_user[user].append((t, item, value, i))
    return {max(events)[3] for events in per_user.values() if len(events) >= 3}


def temporal_cutoff(ratings: list[tuple]) -> int:
    """The default cutoff of split_rule temporal: quantile_disc(event_time, 0.9)."""
    times = sorted(r[3] for r in ratings)
    return times[max(0, -(-9 * len(times) // 10) - 1)]


def perturb(ratings: list[tuple], tags: list[tuple], movies: list[tuple], split_rule: str = "leave_last_out",
            seed: int = 0) -> tuple[list[tuple], list[tuple], int]:
    """(perturbed ratings, perturbed tags, number of events replaced)."""
    rng = random.Random(seed)
    catalogue = sorted(m[0] for m in movies)
    cutoff = temporal_cutoff(ratings) if split_rule == "temporal" else None
    tests = test_events(ratings, split_rule, cutoff)
    had = defaultdict(set)
    for user, item, *_ in list(ratings) + list(tags):
        had[user].add(item)
    items_at = defaultdict(list)  # (user, time) -> items
    for user, item, _, t in ratings:
        items_at[(user, t)].append(item)
    out = list(ratings)
    dropped = set()
    for i in sorted(tests):
        user, item, value, t = ratings[i]
        ties = max(items_at[(user, t)])
        choices = [c for c in catalogue if c not in had[user] and c > ties]
        if not choices:  # nothing sorts after the ties: the event keeps its item
            continue
        new_item = rng.choice(choices)
        had[user].add(new_item)
        out[i] = (user, new_item, value, t)
        dropped.add((user, item))
    kept_tags = [tag for tag in tags if (tag[0], tag[1]) not in dropped]
    return out, kept_tags, len(dropped)
