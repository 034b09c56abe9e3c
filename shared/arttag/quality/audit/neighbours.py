"""Pairs of rows whose normalised embeddings are nearly identical, found in chunks so memory stays bounded."""

from __future__ import annotations

import numpy as np


def similar_pairs(
    vectors: np.ndarray, threshold: float, chunk: int = 2048
) -> list[tuple[int, int, float]]:
    """Every pair ``(i, j, cosine)`` with ``i < j`` and cosine >= ``threshold``.

    Rows must have unit norm. Work is ``chunk x n`` at a time, so a block of
    tens of thousands of rows never builds the full ``n x n`` matrix.
    """
    n = len(vectors)
    out: list[tuple[int, int, float]] = []
    if n < 2:
        return out
    for start in range(0, n, chunk):
        sims = vectors[start:start + chunk] @ vectors.T
        rows, cols = np.nonzero(sims >= threshold)
        keep = cols > rows + start
        for r, c in zip(rows[keep], cols[keep]):
            out.append((int(r + start), int(c), float(sims[r, c])))
    return out


def histogram(values: list[float], bins: int = 10) -> dict[str, int]:
    """Counts of values in [0, 1] per equal-width bin, keyed by the bin's lower edge (``"0.9"``)."""
    counts = [0] * bins
    for v in values:
        counts[min(int(v * bins), bins - 1)] += 1
    return {f"{k / bins:.1f}": n for k, n in enumerate(counts)}


def leader_groups(n: int, pairs: list[tuple[int, int, float]]) -> list[tuple[list[int], float]]:
    """Greedy leader clustering: in index order, each unassigned row leads a group of its unassigned
    neighbours. Unlike connected components, groups cannot chain (a~b~c~...~z with a and z far apart):
    every member is within the threshold of its leader. Returns ``(members, lowest similarity to the leader)``
    for groups of two or more.
    """
    neighbours: dict[int, list[tuple[int, float]]] = {}
    for i, j, sim in pairs:
        neighbours.setdefault(i, []).append((j, sim))
        neighbours.setdefault(j, []).append((i, sim))
    assigned = [False] * n
    groups = []
    for leader in range(n):
        if assigned[leader] or leader not in neighbours:
            continue
        members = [(j, sim) for j, sim in sorted(neighbours[leader]) if not assigned[j]]
        if not members:
            continue
        assigned[leader] = True
        for j, _ in members:
            assigned[j] = True
        groups.append(([leader] + [j for j, _ in members], min(sim for _, sim in members)))
    return groups
