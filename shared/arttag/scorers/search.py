"""The top ``k`` rows of a dense float32 matrix by inner product with each query: the search
behind the embedding kNN, the semantic and the linear scorers.

``exact``: one float32 product of the queries with the whole matrix, then the top ``k`` of
each row. On a catalogue-sized matrix that product is most of a scorer's time (47,401 x 768
against 32 queries: about 45 ms on one core), because a BLAS multiplies so few queries at a
fraction of its speed.

``int8``: the same answer from a quarter of the arithmetic. A copy of the matrix quantised to
int8 (per column, so that columns of different scale keep their resolution) is multiplied
with the dynamically quantised queries by onnxruntime (its integer kernels use the CPU's VNNI
or AMX instructions where there are any), which keeps the ``k + oversample`` best rows of
each query; those candidates are then scored again in float32 from the matrix itself and the
top ``k`` of them kept. Scores are therefore the exact float32 products (up to the order of
summation), and the rows returned are the exact top ``k`` unless a true top-``k`` row fell
outside the int8 candidates, which the oversampling makes rare (``bench/cost.py`` measures the
agreement with ``exact`` on held-out artworks).

Identical rows (pages of one sketchbook often share their text, so their embeddings) are
searched once: the int8 copy holds the distinct rows, and each found row stands for the
rows equal to it, in row order, so ties resolve as in ``exact`` (smaller row first).

Rows changed after the int8 copy was made (online learning) are always among the
candidates and scored from the matrix, so a learned artwork is found at once; the copy is
remade when more than :data:`REBUILD_AFTER` rows have changed.

Both return each query's rows most similar first, ties by row index.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Literal

import numpy as np

from arttag.scorers.topk import top_k_with_values

log = logging.getLogger(__name__)

SearchMode = Literal["auto", "exact", "int8"]

AUTO_INT8_ROWS = 8192
"""``auto`` searches in int8 from this many rows on (below, the exact product is a few ms)."""

REBUILD_AFTER = 4096
"""Changed rows searched exactly beside the int8 copy before it is made again."""

SEARCH_THREADS = min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
"""onnxruntime threads per search (they wait rather than spin between products)."""


def oversample(k: int) -> int:
    """Extra int8 candidates per query beyond ``k``."""
    return max(k, 64)


def top_rows_by_score(idx: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the ``k`` largest ``scores`` (with their ``idx``), largest first, ties by smaller index."""
    order = np.lexsort((idx, -scores), axis=1)[:, :k]
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(scores, order, axis=1)


class SearchingScorer:
    """Mixin for a scorer that searches one matrix (:meth:`searched_matrix`) with its
    ``params.search`` mode: the search is made on first use or by :meth:`prepare` (at load),
    and made again when the scorer holds another matrix."""

    def searched_matrix(self) -> np.ndarray:
        raise NotImplementedError

    def searcher(self) -> InnerProductSearch:
        matrix = self.searched_matrix()
        search = getattr(self, "_search", None)
        if search is None or search.matrix is not matrix:
            search = self._search = InnerProductSearch(matrix, self.params.search)  # type: ignore[attr-defined]
        return search

    def prepare(self) -> None:
        self.searcher().prepare()


class InnerProductSearch:
    """Top-``k`` inner-product search over ``matrix`` (rows x dims, float32), exact or int8-first.

    ``matrix`` is read, not copied: a caller that changes rows in place (or replaces the matrix
    with a longer one) tells the search with :meth:`changed`."""

    def __init__(self, matrix: np.ndarray, mode: SearchMode = "auto") -> None:
        self.matrix = matrix
        self.mode: Literal["exact", "int8"] = (
            ("int8" if len(matrix) >= AUTO_INT8_ROWS else "exact") if mode == "auto" else mode)
        self._index: _Int8Index | None = None
        self._product = None  # the exact product's session, for a matrix that has not changed
        self._static = True
        self._lock = threading.Lock()

    def prepare(self) -> InnerProductSearch:
        """Make now what the first search would make (the int8 copy, the product's session)."""
        if self.mode == "int8":
            with self._lock:
                if self._index is None:
                    self._index = _Int8Index(self.matrix)
        elif self._static and len(self.matrix) >= AUTO_INT8_ROWS:
            with self._lock:
                if self._product is None:
                    self._product = _product_session(self.matrix)
        return self

    def changed(self, matrix: np.ndarray, rows: np.ndarray | list[int]) -> None:
        """``rows`` of ``matrix`` (the matrix now searched) were changed or appended."""
        with self._lock:
            self.matrix = matrix
            self._static, self._product = False, None
            if self._index is not None and not self._index.mark_changed(rows):
                self._index = None  # too many changes: made again on the next search

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices int64, scores float32), each (queries x min(k, rows)), most similar first,
        ties by row index."""
        q = np.ascontiguousarray(queries, dtype=np.float32)
        n = len(self.matrix)
        k = min(k, n)
        if k <= 0 or not len(q):
            return np.zeros((len(q), max(k, 0)), dtype=np.int64), np.zeros((len(q), max(k, 0)), dtype=np.float32)
        if self.mode == "exact" or k + oversample(k) >= n:
            return self._exact(q, k)
        with self._lock:
            if self._index is None:
                self._index = _Int8Index(self.matrix)
            index, matrix = self._index, self.matrix
        return index.search(matrix, q, k)

    def _exact(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._static and len(self.matrix) >= AUTO_INT8_ROWS:
            with self._lock:
                if self._product is None and self._static:
                    self._product = _product_session(self.matrix)
                product = self._product
            if product is not None:
                return top_k_with_values(product.run(None, {"queries": q})[0], k)
        # matrix @ queries.T: the same products by a faster BLAS path for few queries
        return top_k_with_values((self.matrix @ q.T).T, k)


class _Int8Index:
    """The int8 copy of a matrix's distinct rows, each standing for the rows equal to it
    (their members, in row order), and the rows changed since it was made."""

    def __init__(self, matrix: np.ndarray) -> None:
        m = np.ascontiguousarray(matrix, dtype=np.float32)
        self.rows = len(m)
        keys = m.view(np.dtype((np.void, m.dtype.itemsize * m.shape[1]))).ravel()
        _, first, group_of = np.unique(keys, return_index=True, return_inverse=True)
        group_of = group_of.ravel()
        self.group_of = group_of
        self.members = np.argsort(group_of, kind="stable")  # each group's rows in row order
        self.starts = np.concatenate([[0], np.cumsum(np.bincount(group_of, minlength=len(first)))])
        self.sizes = np.diff(self.starts)
        self.representative = first.astype(np.int64)  # the group's first row (-1: every row changed)
        self.session = _int8_session(m[first])
        self.changed = np.zeros(self.rows, dtype=bool)
        self.changed_rows = np.zeros(0, dtype=np.int64)

    def mark_changed(self, rows: np.ndarray | list[int]) -> bool:
        """Record changed rows (False when there are too many: make the index again)."""
        rows = np.asarray(rows, dtype=np.int64)
        rows = rows[rows < self.rows]
        if not len(rows):
            return True
        self.changed[rows] = True
        self.changed_rows = np.flatnonzero(self.changed)
        if len(self.changed_rows) > REBUILD_AFTER:
            return False
        for g in np.unique(self.group_of[rows]).tolist():
            left = [r for r in self.members[self.starts[g]:self.starts[g + 1]].tolist() if not self.changed[r]]
            self.representative[g] = left[0] if left else -1
        return True

    def search(self, matrix: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        groups = len(self.representative)
        wanted = min(k + oversample(k), groups)
        found = self.session.run(None, {"queries": q, "k": np.array([wanted], dtype=np.int64)})[0]
        reps = self.representative[found]
        # each distinct row scored in float32 from the matrix itself
        scores = np.matmul(matrix[np.maximum(reps, 0)], q[:, :, None])[:, :, 0]
        scores[reps < 0] = -np.inf
        # ... and stands for its first rows (no more than k, or k + the changed ones among them)
        cap = k + len(self.changed_rows)
        take = np.minimum(self.sizes[found], cap).ravel()
        offsets = np.repeat(self.starts[found.ravel()] - np.concatenate([[0], np.cumsum(take)[:-1]]), take)
        idx = self.members[offsets + np.arange(int(take.sum()))]
        row = np.repeat(np.repeat(np.arange(len(q)), found.shape[1]), take)
        value = np.repeat(scores.ravel(), take)
        if len(self.changed_rows) or len(matrix) > self.rows:
            # changed and appended rows: always candidates, scored from the matrix as it is now
            keep = ~self.changed[idx]
            idx, row, value = idx[keep], row[keep], value[keep]
            extra = np.concatenate([self.changed_rows, np.arange(self.rows, len(matrix), dtype=np.int64)])
            extra_scores = q @ matrix[extra].T
            idx = np.concatenate([idx, np.tile(extra, len(q))])
            row = np.concatenate([row, np.repeat(np.arange(len(q)), len(extra))])
            value = np.concatenate([value, extra_scores.ravel()])
        # ragged candidates per query, padded; padding sorts last
        order = np.argsort(row, kind="stable")
        idx, row, value = idx[order], row[order], value[order]
        counts = np.bincount(row, minlength=len(q))
        width = max(int(counts.max()), k)
        column = np.arange(len(row)) - np.repeat(np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        pad_idx = np.full((len(q), width), np.iinfo(np.int64).max, dtype=np.int64)
        pad_val = np.full((len(q), width), -np.inf, dtype=np.float32)
        pad_idx[row, column], pad_val[row, column] = idx, value
        return top_rows_by_score(pad_idx, pad_val, k)


def _int8_session(matrix: np.ndarray):
    """An onnxruntime session: float queries -> the indices of their ``k`` largest int8 products
    with ``matrix`` (whose columns are each scaled to int8's range; the queries are multiplied by
    the same scales, so the products approximate the float ones)."""
    from onnx import TensorProto, helper, numpy_helper

    m = np.asarray(matrix, dtype=np.float32)
    dims = m.shape[1]
    scale = np.abs(m).max(axis=0) / 127.0
    # a column that is zero throughout adds nothing: its scale 0 also keeps the queries' values
    # there out of their quantisation range, which would otherwise swamp the other columns
    quantised = np.clip(np.rint(m / np.where(scale > 0, scale, 1.0)), -127, 127).astype(np.int8)
    initialisers = [
        numpy_helper.from_array(np.ascontiguousarray(quantised.T), "matrix_t"),
        numpy_helper.from_array(scale.astype(np.float32), "scale"),
        numpy_helper.from_array(np.array(0, dtype=np.int8), "matrix_zero"),
    ]
    nodes = [
        helper.make_node("Mul", ["queries", "scale"], ["scaled"]),
        helper.make_node("DynamicQuantizeLinear", ["scaled"], ["q8", "q_scale", "q_zero"]),
        helper.make_node("MatMulInteger", ["q8", "matrix_t", "q_zero", "matrix_zero"], ["products"]),
        helper.make_node("TopK", ["products", "k"], ["best", "indices"], axis=1, largest=1, sorted=0),
    ]
    graph = helper.make_graph(
        nodes, "int8_top_k",
        [helper.make_tensor_value_info("queries", TensorProto.FLOAT, [None, dims]),
         helper.make_tensor_value_info("k", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("indices", TensorProto.INT64, [None, None])],
        initialisers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    log.debug("int8 search index: %d rows x %d dims", *m.shape)
    return _session(model)


def _product_session(matrix: np.ndarray):
    """An onnxruntime session: float queries -> their float32 products with every row of ``matrix``.
    onnxruntime's own matrix kernels multiply a few dozen queries by a catalogue-sized matrix
    in about two thirds of the time of numpy's BLAS on one thread."""
    from onnx import TensorProto, helper, numpy_helper

    m = np.asarray(matrix, dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["queries", "matrix_t"], ["products"])], "product",
        [helper.make_tensor_value_info("queries", TensorProto.FLOAT, [None, m.shape[1]])],
        [helper.make_tensor_value_info("products", TensorProto.FLOAT, [None, m.shape[0]])],
        [numpy_helper.from_array(np.ascontiguousarray(m.T), "matrix_t")])
    return _session(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def _session(model):
    import onnxruntime as ort

    model.ir_version = min(model.ir_version, 9)
    options = ort.SessionOptions()
    # Threads that wait rather than spin: on a busy machine a spinning thread takes a core
    # from other work (the reason the scorers' BLAS runs one thread, math_threads), while a
    # waiting one costs only its hand-over, small against products of several milliseconds.
    options.intra_op_num_threads = SEARCH_THREADS
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
