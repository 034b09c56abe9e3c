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


class UnionFind:
    """Connected components over integer ids (near-identical pairs -> groups)."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        a, b = self.find(i), self.find(j)
        if a != b:
            self.parent[max(a, b)] = min(a, b)

    def groups(self) -> list[list[int]]:
        members: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            members.setdefault(self.find(i), []).append(i)
        return [m for m in members.values() if len(m) > 1]
