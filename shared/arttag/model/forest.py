"""The re-ranker's trees evaluated by a compiled kernel: scikit-learn's probabilities, several times faster.

:meth:`Ensemble._merge <arttag.model.ensemble.Ensemble._merge>` asks the re-ranker (a fitted
binary :class:`~sklearn.ensemble.HistGradientBoostingClassifier`) for the probability of every
candidate of a batch: a few thousand rows through ~600 trees. scikit-learn walks one tree at a
time over the rows, a node at a time, with a branch per node that the CPU mispredicts half the
time. :class:`FlatForest` instead evaluates every split of a tree for a whole column of rows
at once (a comparison the compiler vectorises), keeps per row a bit mask of the leaves still
reachable (QuickScorer, Lucchese et al., SIGIR 2015: each split that goes right removes its
left subtree's leaves; the exit leaf is the leftmost leaf left), and adds that leaf's value.
The kernel is compiled by numba (``nogil``) and cached on disk (``NUMBA_CACHE_DIR``, else
beside this module, else the user's cache folder): the first process on a machine compiles it
(2-5 s), later ones load it (numba's import and the cached kernel: about a second on a busy
machine); turning the model into arrays takes 0.15-0.5 s for the full-Tate re-ranker (585 trees).

The figures are scikit-learn's to the last bit: the same float64 comparisons, the same
handling of missing values and categories, and the leaf values added in the same order
(baseline, then tree by tree), through the model's own link function:

- numeric splits go left when ``x <= threshold``; a missing value (NaN) goes where the tree
  learned (``missing_go_to_left``);
- categorical columns are first mapped as scikit-learn's own preprocessing does: a value's code
  is its position among the categories seen in training; unseen values and NaN are missing.
  A split sends the codes in its set left and a missing value where the tree learned. All of a
  tree's splits on one categorical column become one table (code -> mask of the leaves they
  leave), looked up once per row.

Before use the compiled form is checked against ``predict_proba`` on probe rows
(:func:`check_against_model`): it reads scikit-learn's private tree arrays, which a release
may change. Whenever the model cannot be compiled (another estimator, a multi-class model,
trees with more than 64 leaves, numba missing, a failed check), :class:`RerankerPredictor`
logs a warning once and uses ``predict_proba``.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MAX_LEAVES = 64
"""Leaves per tree the kernel takes (one bit each in a ``uint64`` mask)."""

_ALL = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
_DEBRUIJN = 0x022FDD63CC95386D
"""De Bruijn multiplier: ``((m & -m) * _DEBRUIJN) >> 58`` is unique for every single bit ``m``
(:data:`_DEBRUIJN_POSITION` turns it into the bit's position); numba has no public
count-trailing-zeros."""
_DEBRUIJN_POSITION = np.zeros(64, dtype=np.int64)
for _bit in range(64):
    _DEBRUIJN_POSITION[((1 << _bit) * _DEBRUIJN & 0xFFFF_FFFF_FFFF_FFFF) >> 58] = _bit

MIN_ROWS_PER_THREAD = 1024
"""With more than one thread allowed, rows are split into parts of at least this many."""


class CompileError(Exception):
    """The model cannot be evaluated by the kernel."""


@dataclass(frozen=True)
class FlatForest:
    """A fitted binary ``HistGradientBoostingClassifier`` as flat arrays for :func:`_sum_leaves`.

    Numeric splits, tree after tree (``tree_start[t]:tree_start[t + 1]``): the column, the
    threshold, whether a missing value goes right, and the mask of leaves that remain when the
    split goes right (its left subtree's leaves cleared; leaves numbered left to right).
    Categorical splits: ``cat_table[t, cat_start[f] + code]`` is the mask of leaves that tree
    ``t``'s splits on categorical column ``f`` leave for that code (the last code: missing).
    """

    model: Any
    n_features: int
    cat_columns: np.ndarray  # (F,) the categorical columns of the caller's matrix
    categories: tuple[np.ndarray, ...]  # per categorical column, the known categories (sorted)
    split_column: np.ndarray
    split_threshold: np.ndarray
    split_nan_right: np.ndarray
    split_mask: np.ndarray
    tree_start: np.ndarray
    cat_table: np.ndarray
    cat_start: np.ndarray
    cat_used: np.ndarray  # (trees, F): whether tree t splits on categorical column f
    leaf_values: np.ndarray  # (trees, MAX_LEAVES), leaves left to right
    baseline: float

    @classmethod
    def from_model(cls, model: Any) -> FlatForest:
        from sklearn.ensemble import HistGradientBoostingClassifier

        if not isinstance(model, HistGradientBoostingClassifier):
            raise CompileError(f"not a HistGradientBoostingClassifier: {type(model).__name__}")
        if model.n_trees_per_iteration_ != 1:
            raise CompileError("only binary classifiers are compiled")
        n_features = int(model.n_features_in_)
        cat_columns, categories, columns = _input_layout(model)
        cat_index = {int(c): i for i, c in enumerate(cat_columns)}
        cat_start = np.concatenate([[0], np.cumsum([len(v) + 1 for v in categories])]).astype(np.int64)
        n_trees = len(model._predictors)
        cat_table = np.full((n_trees, int(cat_start[-1])), _ALL, dtype=np.uint64)
        cat_used = np.zeros((n_trees, len(cat_columns)), dtype=np.uint8)
        leaf_values = np.zeros((n_trees, MAX_LEAVES), dtype=np.float64)
        split_column: list[int] = []
        split_threshold: list[float] = []
        split_nan_right: list[int] = []
        split_mask: list[int] = []
        tree_start = [0]
        for t, (predictor,) in enumerate(model._predictors):
            nodes = predictor.nodes
            fields = {k: nodes[k].tolist() for k in ("is_leaf", "left", "right", "feature_idx", "num_threshold",
                                                     "missing_go_to_left", "is_categorical", "bitset_idx")}
            first, last, order = _leaf_ranges(fields["is_leaf"], fields["left"], fields["right"])
            if len(order) > MAX_LEAVES:
                raise CompileError(f"a tree has {len(order)} leaves (at most {MAX_LEAVES})")
            leaf_values[t, :len(order)] = nodes["value"][order]
            for i, is_leaf in enumerate(fields["is_leaf"]):
                if is_leaf:
                    continue
                left = fields["left"][i]
                # The leaves that remain when this split goes right: all but its left subtree's.
                kept = ~(((1 << (last[left] + 1)) - 1) ^ ((1 << first[left]) - 1)) & 0xFFFF_FFFF_FFFF_FFFF
                column = int(columns[fields["feature_idx"][i]])
                nan_right = not fields["missing_go_to_left"][i]
                if fields["is_categorical"][i]:
                    f = cat_index.get(column)
                    if f is None:
                        raise CompileError(f"categorical split on column {column}, which has no categories")
                    n_known = len(categories[f])
                    goes_left = _bitset_members(predictor.raw_left_cat_bitsets[fields["bitset_idx"][i]], n_known)
                    goes_right = np.append(~goes_left, nan_right)  # the last code: missing
                    segment = cat_table[t, cat_start[f]:cat_start[f + 1]]
                    segment &= np.where(goes_right, np.uint64(kept), _ALL)
                    cat_used[t, f] = 1
                else:
                    split_column.append(column)
                    split_threshold.append(float(fields["num_threshold"][i]))
                    split_nan_right.append(int(nan_right))
                    split_mask.append(kept)
            tree_start.append(len(split_column))
        return cls(
            model=model, n_features=n_features, cat_columns=cat_columns, categories=categories,
            split_column=np.array(split_column, dtype=np.int64),
            split_threshold=np.array(split_threshold, dtype=np.float64),
            split_nan_right=np.array(split_nan_right, dtype=np.uint8),
            split_mask=np.array(split_mask, dtype=np.uint64),
            tree_start=np.array(tree_start, dtype=np.int64),
            cat_table=cat_table, cat_start=cat_start, cat_used=cat_used, leaf_values=leaf_values,
            baseline=float(np.asarray(model._baseline_prediction).ravel()[0]),
        )

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``x`` column by column (float64), and the categorical columns' codes (missing: the last)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected {self.n_features} features, got shape {x.shape}")
        columns = np.ascontiguousarray(x.T)
        codes = np.empty((len(self.cat_columns), len(x)), dtype=np.int64)
        for f, (column, known) in enumerate(zip(self.cat_columns, self.categories)):
            raw = columns[column]
            pos = np.searchsorted(known, raw)
            inside = pos < len(known)
            found = np.zeros(len(raw), dtype=bool)
            found[inside] = known[pos[inside]] == raw[inside]  # NaN equals nothing: missing
            codes[f] = np.where(found, pos, len(known))
        return columns, codes

    def raw(self, x: np.ndarray, threads: int | None = 1) -> np.ndarray:
        """The model's raw score per row: the baseline plus each tree's leaf value."""
        columns, codes = self.encode(x)
        out = np.empty(columns.shape[1], dtype=np.float64)
        kernel = _kernel()
        arrays = (self.split_column, self.split_threshold, self.split_nan_right, self.split_mask,
                  self.tree_start, self.cat_table, self.cat_start, self.cat_used, self.leaf_values,
                  _DEBRUIJN_POSITION)
        n = len(out)
        parts = max(1, min(threads or os.cpu_count() or 1, n // MIN_ROWS_PER_THREAD))
        if parts == 1:
            kernel(columns, codes, *arrays, self.baseline, out)
            return out
        # The kernel releases the GIL: the parts run in parallel in plain threads.
        # Each part's columns are copied to contiguous arrays: the kernel is compiled for those.
        bounds = np.linspace(0, n, parts + 1).astype(int)

        def part(a: int, b: int) -> None:
            kernel(np.ascontiguousarray(columns[:, a:b]), np.ascontiguousarray(codes[:, a:b]), *arrays,
                   self.baseline, out[a:b])

        with ThreadPoolExecutor(parts) as pool:
            list(pool.map(part, bounds[:-1], bounds[1:]))
        return out

    def predict_positive(self, x: np.ndarray, threads: int | None = 1) -> np.ndarray:
        """``model.predict_proba(x)[:, 1]``."""
        raw = self.raw(x, threads)
        return self.model._loss.predict_proba(raw)[:, 1]


def _input_layout(model: Any) -> tuple[np.ndarray, tuple[np.ndarray, ...], np.ndarray]:
    """The categorical columns of the caller's matrix, their known categories (a value's code is
    its position), and per tree feature index the caller's column (scikit-learn's preprocessing
    puts the categorical columns first)."""
    n = int(model.n_features_in_)
    if getattr(model, "_preprocessor", None) is None:
        return np.zeros(0, dtype=np.int64), (), np.arange(n)
    transformer = model._preprocessor
    encoder = transformer.named_transformers_["encoder"]
    source = np.asarray(model.is_categorical_, dtype=bool)
    original = np.arange(n)
    columns = np.empty(n, dtype=np.int64)
    columns[transformer.output_indices_["encoder"]] = original[source]
    columns[transformer.output_indices_["numerical"]] = original[~source]
    categories = []
    for values in encoder.categories_:
        values = np.asarray(values, dtype=np.float64)
        values = values[~np.isnan(values)]  # the encoder keeps NaN as a last category
        if np.any(np.diff(values) <= 0):
            raise CompileError("categories are not sorted")
        categories.append(values)
    return original[source], tuple(categories), columns


def _leaf_ranges(is_leaf: list[int], left: list[int], right: list[int]) -> tuple[dict[int, int], dict[int, int], list[int]]:
    """Per node, the first and last of its leaves numbered left to right, and the leaves in that order."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    order: list[int] = []
    stack = [(0, False)]
    while stack:
        node, done = stack.pop()
        if is_leaf[node]:
            first[node] = last[node] = len(order)
            order.append(node)
        elif done:
            first[node], last[node] = first[left[node]], last[right[node]]
        else:
            stack += [(node, True), (right[node], False), (left[node], False)]
    return first, last, order


def _bitset_members(bitset: np.ndarray, n: int) -> np.ndarray:
    """Whether each of the values 0..n-1 is set in one of scikit-learn's 8 x uint32 bitsets."""
    bits = np.unpackbits(np.asarray(bitset, dtype="<u4").view(np.uint8), bitorder="little")
    return bits[:n].astype(bool)


def _sum_leaves(columns, codes, split_column, split_threshold, split_nan_right, split_mask,
                tree_start, cat_table, cat_start, cat_used, leaf_values, debruijn, baseline, out):
    """The kernel (compiled by :func:`_kernel`): ``out[r]`` = baseline + each tree's exit leaf value."""
    n = columns.shape[1]
    everything = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
    mask = np.empty(n, dtype=np.uint64)
    for r in range(n):
        out[r] = baseline
    for t in range(tree_start.shape[0] - 1):
        for r in range(n):
            mask[r] = everything
        for f in range(codes.shape[0]):
            if cat_used[t, f]:
                table = cat_table[t, cat_start[f]:cat_start[f + 1]]
                code = codes[f]
                for r in range(n):
                    mask[r] &= table[code[r]]
        for j in range(tree_start[t], tree_start[t + 1]):
            kept = split_mask[j]
            x = columns[split_column[j]]
            threshold = split_threshold[j]
            if split_nan_right[j]:
                for r in range(n):
                    mask[r] &= everything if x[r] <= threshold else kept
            else:
                for r in range(n):
                    mask[r] &= kept if x[r] > threshold else everything
        values = leaf_values[t]
        for r in range(n):
            m = mask[r]
            lowest = m & (~m + np.uint64(1))
            out[r] += values[debruijn[(lowest * np.uint64(0x022FDD63CC95386D)) >> np.uint64(58)]]


def _kernel() -> Any:
    """:func:`_sum_leaves` compiled by numba (:func:`arttag.compiled.compiled`)."""
    from arttag.compiled import compiled

    kernel = compiled(_sum_leaves)
    if kernel is None:
        raise CompileError("numba is not installed")
    return kernel


def check_against_model(forest: FlatForest, rows: int = 256, tolerance: float = 1e-9) -> None:
    """Raises :class:`CompileError` unless ``forest`` gives the model's ``predict_proba`` on
    probe rows whose values sit on and just above the trees' thresholds, and are missing or
    unseen categories: scikit-learn's internals it reads are private and may change."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, forest.n_features))
    for column in range(forest.n_features):
        thresholds = forest.split_threshold[forest.split_column == column]
        if len(thresholds):
            values = np.concatenate([thresholds, np.nextafter(thresholds, np.inf), [np.nan]])
            x[:, column] = rng.choice(values, size=rows)
    for column, known in zip(forest.cat_columns, forest.categories):
        unseen = [np.nan, -1.0, (known[-1] if len(known) else 0.0) + 1.0, 0.5]
        x[:, column] = rng.choice(np.concatenate([known, unseen]), size=rows)
    from arttag.model.ensemble import math_threads

    with math_threads(1):  # OpenMP's default pool spins for seconds on busy CPUs
        expected = forest.model.predict_proba(x)[:, 1]
    difference = float(np.max(np.abs(forest.predict_positive(x) - expected), initial=0.0))
    if not difference <= tolerance:
        raise CompileError(f"compiled trees differ from predict_proba by {difference:.3g}")


class RerankerPredictor:
    """The positive-class probability of a fitted classifier: by :class:`FlatForest` once
    :meth:`prepare` has built it, else by ``predict_proba`` (warned once)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self._forest: FlatForest | None = None
        self._failed = False
        self._lock = threading.Lock()

    def prepare(self) -> FlatForest | None:
        """Builds and compiles the fast form once (a check row runs through it); ``None`` when
        the model cannot be compiled."""
        if self._forest is None and not self._failed:
            with self._lock:
                if self._forest is None and not self._failed:
                    try:
                        forest = FlatForest.from_model(self.model)
                        check_against_model(forest)  # also compiles the kernel
                        self._forest = forest
                    except Exception as exc:  # noqa: BLE001 - any failure falls back to the model itself
                        self._failed = True
                        log.warning("re-ranker kept on scikit-learn's predict_proba, several times "
                                    "slower: it cannot be compiled (%s)", exc)
        return self._forest

    @property
    def compiled(self) -> bool:
        return self.prepare() is not None

    def __call__(self, x: np.ndarray, threads: int | None = 1) -> np.ndarray:
        forest = self.prepare()
        if forest is not None:
            return forest.predict_positive(x, threads)
        from arttag.model.ensemble import math_threads

        with math_threads(threads):
            return self.model.predict_proba(x)[:, 1]
