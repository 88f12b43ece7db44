"""Interests without labels: clusters of item vectors, named by their most typical items.

A catalogue whose items carry no genres still has interests: what the model learned puts
items that the same users follow into the same region of its item space. ``cluster_items``
groups any item vectors (the LM's ``ml.item_embeddings``, or text embeddings: any
(item, vector) table) by spherical k-means, seeded; ``cluster_labels`` names each cluster by
the items nearest its centre.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def cluster_items(vectors: np.ndarray, k: int, seed: int, iterations: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """(cluster of each row, cosine similarity of each row to its cluster's centre) for the
    rows of ``vectors`` [n, d]: spherical k-means (cosine) with k-means++ seeding by ``seed``.
    ``k`` is capped at the number of distinct rows; a zero vector joins cluster 0."""
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"cluster_items: expected vectors [n, d], found shape {x.shape}")
    if k < 1:
        raise ValueError(f"cluster_items: expected k >= 1, found {k}")
    n = x.shape[0]
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    k = min(k, len(np.unique(x.round(12), axis=0)))
    rng = np.random.default_rng(seed)
    centres = [x[rng.integers(n)]]
    closest = 1.0 - x @ centres[0]
    for _ in range(1, k):  # k-means++ over cosine distance
        p = np.clip(closest, 0, None) ** 2
        pick = rng.choice(n, p=p / p.sum()) if p.sum() > 0 else rng.integers(n)
        centres.append(x[pick])
        closest = np.minimum(closest, 1.0 - x @ x[pick])
    c = np.stack(centres)
    assign = np.full(n, -1)
    for _ in range(iterations):
        new = np.argmax(x @ c.T, axis=1)
        if np.array_equal(new, assign):
            break
        assign = new
        for j in range(k):
            members = x[assign == j]
            if len(members):
                s = members.sum(axis=0)
                c[j] = s / (np.linalg.norm(s) or 1.0)
    similarity = np.einsum("ij,ij->i", x, c[assign])
    return assign.astype(np.int64), similarity


def cluster_labels(clusters: np.ndarray, similarity: np.ndarray, names: np.ndarray, typical: int = 3,
                   tags: Mapping[int, str] | None = None) -> dict[int, str]:
    """Each cluster's label: "<the ``typical`` items nearest its centre> (+ its top tag)", e.g.
    "Toy Story (1995) / Aladdin (1992) / Shrek (2001)", numbered when two labels would be equal."""
    labels: dict[int, str] = {}
    for j in np.unique(clusters).tolist():
        rows = np.flatnonzero(clusters == j)
        nearest = rows[np.argsort(-similarity[rows], kind="stable")[:typical]]
        label = " / ".join(str(v) for v in names[nearest])
        if tags and j in tags:
            label += f" ({tags[j]})"
        labels[j] = label
    seen: dict[str, int] = {}
    for j, label in labels.items():
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            labels[j] = f"{label} #{seen[label]}"
    return labels
