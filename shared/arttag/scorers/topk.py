"""The ``k`` largest values of every row of a matrix, largest first, ties by smaller column.

The scorers take a few dozen best of tens of thousands of similarities per artwork (every
training artwork, every tag). ``numpy.argpartition`` on a batch of 32 rows of 47,401 took
5-14 ms, about as long as the TF-IDF similarities themselves: it moves every element of a
row, and rows that are mostly zeros (no shared word) are its slow case. One pass that keeps
the ``k`` best seen so far in a sorted buffer touches each element once and moves only
the few that enter; compiled by numba (:mod:`arttag.compiled`), a tenth of the time.

Ties: among equal values the smaller column comes first, and at the cut the smaller columns
are kept. Identical vectors are common (pages of one sketchbook with the same text), so
this makes which of them are cited a rule rather than the accident of a partial sort.
NaN counts as smaller than every number.
"""

from __future__ import annotations

import numpy as np

from arttag.compiled import compiled


def _top_k_kernel(values: np.ndarray, k: int, idx: np.ndarray, best: np.ndarray) -> None:  # pragma: no cover (compiled)
    n_rows, n = values.shape
    for r in range(n_rows):
        row, kept, cols = values[r], best[r], idx[r]
        size = 0
        worst = kept[k - 1]  # -inf until the buffer is full
        for j in range(n):
            v = row[j]
            if size == k:
                if not (v > worst):
                    continue  # not better than the worst kept (an equal value in a later column loses; NaN too)
            elif v != v:
                continue  # NaN while filling: left as the -inf padding, filled by later values
            i = size if size < k else k - 1
            while i > 0 and kept[i - 1] < v:
                kept[i] = kept[i - 1]
                cols[i] = cols[i - 1]
                i -= 1
            kept[i] = v
            cols[i] = j
            if size < k:
                size += 1
            if size == k:
                worst = kept[k - 1]
        if size < k:
            # NaNs skipped while filling: the remaining places go to them, first columns first
            for j in range(n):
                if size == k:
                    break
                if row[j] != row[j]:
                    cols[size] = j
                    size += 1


def _top_k_kernel_by_column(values_t: np.ndarray, k: int, idx: np.ndarray, best: np.ndarray) -> None:  # pragma: no cover
    """:func:`_top_k_kernel` of ``values_t.T``, reading ``values_t`` (columns x rows) in memory
    order: a product with a sparse matrix comes out column-major, and copying it to rows costs
    several times the search."""
    n, n_rows = values_t.shape
    size = np.zeros(n_rows, dtype=np.int64)
    worst = best[:, k - 1].copy()
    for j in range(n):
        for r in range(n_rows):
            v = values_t[j, r]
            s = size[r]
            if s == k:
                if not (v > worst[r]):
                    continue
            elif v != v:
                continue
            i = s if s < k else k - 1
            while i > 0 and best[r, i - 1] < v:
                best[r, i] = best[r, i - 1]
                idx[r, i] = idx[r, i - 1]
                i -= 1
            best[r, i] = v
            idx[r, i] = j
            if s < k:
                s += 1
                size[r] = s
            if s == k:
                worst[r] = best[r, k - 1]
    for r in range(n_rows):
        s = size[r]
        for j in range(n):
            if s == k:
                break
            if values_t[j, r] != values_t[j, r]:
                idx[r, s] = j
                s += 1


def top_k_with_values(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(columns int64, values), each (rows x min(k, columns)): every row's ``k`` largest values,
    largest first, ties by smaller column (a NaN is returned as -inf)."""
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError("values must be a matrix")
    k = max(0, min(k, values.shape[1]))
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float64)
    idx = np.zeros((values.shape[0], k), dtype=np.int64)
    best = np.full((values.shape[0], k), -np.inf, dtype=values.dtype)
    if k == 0 or not len(values):
        return idx, best
    by_column = not values.flags.c_contiguous and values.T.flags.c_contiguous
    kernel = compiled(_top_k_kernel_by_column if by_column else _top_k_kernel)
    if kernel is not None:
        kernel(values.T if by_column else np.ascontiguousarray(values), k, idx, best)
        return idx, best
    return _top_k_numpy(values, k)


def _top_k_numpy(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`top_k_with_values` without numba."""
    v = np.where(np.isnan(values), -np.inf, values)
    n = v.shape[1]
    if k < n:
        part = np.argpartition(v, n - k, axis=1)[:, n - k:]
        kth = np.take_along_axis(v, part, axis=1).min(axis=1, keepdims=True)
        above, at = v > kth, v == kth
        need = k - above.sum(axis=1, keepdims=True)
        chosen = above | (at & (np.cumsum(at, axis=1) <= need))
        part = np.nonzero(chosen)[1].reshape(len(v), k)
    else:
        part = np.broadcast_to(np.arange(n), v.shape).copy()
    top = np.take_along_axis(v, part, axis=1)
    order = np.lexsort((part, -top), axis=1)
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(top, order, axis=1)
