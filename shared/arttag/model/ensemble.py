"""Ensembles compose scorers into one ranking; the two-step ensemble is the default kind.

:class:`BaseEnsemble` is the contract every kind fulfils (:func:`arttag.model.explain.build_suggestions`
and the bundle need nothing more); the kind is named in the bundle's ``ensemble.json`` and
looked up in :data:`ENSEMBLES` by :func:`load_ensemble`, as scorers are by name.

The two-step ensemble (:class:`Ensemble`, kind ``two-step``): step 1
(:meth:`BaseEnsemble.gather`) asks each scorer for its top candidates and keeps
its answer per source. Step 2 (:meth:`Ensemble.rank`) describes every
(artwork, candidate tag) pair by features (each scorer's score, rank and
relative score, neighbour votes and similarities, the tag's prior frequency,
how much support the tag's group has among the candidates, how many scorers
agree) and :meth:`Ensemble._merge` turns them into a probability with a
gradient-boosted classifier trained on artworks the scorers never saw (the
``rerank`` split). Override ``_merge`` for another combination rule.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar, overload

import joblib
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from arttag.catalogue.vocabulary import Vocabulary
from arttag.errors import ModelError
from arttag.model.forest import RerankerPredictor
from arttag.plugins import load_plugin
from arttag.scorers.base import Batch, Candidates, Pairs, Scorer, loading_together
from arttag.scorers.registry import get_scorer_class

log = logging.getLogger(__name__)


class RerankerParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_iter: int = Field(800, ge=1)
    learning_rate: float = Field(0.05, gt=0, le=1)
    max_leaf_nodes: int = Field(31, ge=2)
    min_samples_leaf: int = Field(40, ge=1)
    l2_regularization: float = Field(1.0, ge=0)
    random_state: int = 0
    threads: int = Field(1, ge=1, description="OpenMP threads for fit and predict; 1 avoids spin-waiting on busy CPUs")


@dataclass
class Ranked:
    """The ensemble's answer for one artwork: candidates sorted by probability, with per-source data."""

    tags: np.ndarray
    probs: np.ndarray
    source_scores: dict[str, np.ndarray]
    source_ranks: dict[str, np.ndarray]
    """1-based rank among that scorer's own candidates; 0 where it did not propose the tag."""

    def proposed_by(self, i: int) -> list[str]:
        return [name for name, ranks in self.source_ranks.items() if ranks[i] > 0]

    @classmethod
    def sorted(cls, tags: np.ndarray, probs: np.ndarray, source_scores: dict[str, np.ndarray],
               source_ranks: dict[str, np.ndarray]) -> Ranked:
        """Aligned per-candidate arrays, reordered by probability (ties: by tag index)."""
        order = np.lexsort((tags, -probs))
        return cls(tags=tags[order], probs=probs[order],
                   source_scores={k: v[order] for k, v in source_scores.items()},
                   source_ranks={k: v[order] for k, v in source_ranks.items()})


@dataclass
class PairFeatures:
    """Features of every candidate of one artwork."""

    tags: np.ndarray
    matrix: np.ndarray
    source_scores: dict[str, np.ndarray]
    source_ranks: dict[str, np.ndarray]


@dataclass
class BatchFeatures:
    """Features of every candidate of a batch, artwork after artwork (:class:`Pairs` order)."""

    pairs: Pairs
    matrix: np.ndarray
    source_scores: dict[str, np.ndarray]
    source_ranks: dict[str, np.ndarray]

    def row(self, row: int) -> PairFeatures:
        """Artwork ``row``'s candidates (views of the batch's arrays)."""
        span = self.pairs.row(row)
        return PairFeatures(self.pairs.tags[span], self.matrix[span],
                            {k: v[span] for k, v in self.source_scores.items()},
                            {k: v[span] for k, v in self.source_ranks.items()})

    def ranked(self, probs: np.ndarray) -> list[Ranked]:
        """Per artwork, its candidates sorted by ``probs`` (aligned with the pairs)."""
        out = []
        for row in range(self.pairs.n_rows):
            span = self.pairs.row(row)
            out.append(Ranked.sorted(self.pairs.tags[span], probs[span],
                                     {k: v[span] for k, v in self.source_scores.items()},
                                     {k: v[span] for k, v in self.source_ranks.items()}))
        return out


CATEGORICAL = ("tag_group", "tag_area")
"""Re-ranker features that are category codes (the tag's level-1 group and level-0 area): the
re-ranker learns how each part of the vocabulary is used, e.g. that places are assigned
whenever they are named but postures only sometimes."""
MAX_CATEGORIES = 250


def _category_codes(values: list[str]) -> np.ndarray:
    """Code per value, by frequency; the rarest beyond :data:`MAX_CATEGORIES` share one code
    (the re-ranker takes at most 255 categories per feature)."""
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    ranked = sorted(counts, key=lambda v: (-counts[v], v))
    code = {v: min(i, MAX_CATEGORIES) for i, v in enumerate(ranked)}
    return np.array([code[v] for v in values], dtype=np.float64)


def _ranks(proposed: np.ndarray, tags: np.ndarray) -> np.ndarray:
    """1-based position of each of ``tags`` in ``proposed`` (0 where absent)."""
    if not len(proposed):
        return np.zeros(len(tags))
    order = np.argsort(proposed, kind="stable")
    pos = np.minimum(np.searchsorted(proposed[order], tags), len(proposed) - 1)
    hit = proposed[order][pos] == tags
    return np.where(hit, order[pos] + 1, 0).astype(np.float64)


S = TypeVar("S", bound=Scorer)

_CONTROLLER: Any = None
_CONTROLLER_LOCK = threading.Lock()


@contextlib.contextmanager
def math_threads(limit: int | None) -> Iterator[None]:
    """OpenMP (scikit-learn) and BLAS (numpy, scipy) use at most ``limit`` threads inside the
    block; ``None`` leaves the libraries' defaults.

    One thread is faster here even on an idle machine: a batch's products are a few dozen
    milliseconds, too short for a second thread to pay for its hand-over, and on busy CPUs
    the idle thread spins (on the full-Tate bundle, 2 threads cost 1.5-2.3 times the CPU
    time of 1 for the kNN, linear and semantic products). The libraries are looked up once
    (:class:`threadpoolctl.ThreadpoolController`): a fresh ``threadpool_limits`` walks
    every loaded library, about 2 ms of CPU time per call."""
    if limit is None:
        yield
        return
    global _CONTROLLER
    with _CONTROLLER_LOCK:
        if _CONTROLLER is None:
            # The controller knows the libraries loaded when it is made: load the ones it limits first.
            import scipy.linalg  # noqa: F401  (scipy's OpenBLAS)
            import sklearn.ensemble  # noqa: F401  (scikit-learn's OpenMP, which the re-ranker uses)
            from threadpoolctl import ThreadpoolController

            _CONTROLLER = ThreadpoolController()
        controller = _CONTROLLER
    with controller.limit(limits=limit):
        yield


class BaseEnsemble(ABC):
    """Scorers composed into one ranking per artwork, keeping every scorer's scores and ranks
    (:class:`Ranked`), which is what the explanations are built from.

    A kind implements :meth:`rank`; it stores what it learned beside the scorers with
    :meth:`_spec` (small, JSON) and :meth:`_save`, and reads it back in :meth:`_load`.
    Register it in :data:`ENSEMBLES` under its :attr:`kind` so :func:`load_ensemble` finds it.

    Example of another kind (the mean of the scorers' scores, nothing to learn)::

        class MeanEnsemble(BaseEnsemble):
            kind = "mean"

            def rank(self, batch, cands=None):
                cands = cands if cands is not None else self.gather(batch)
                ranked = []
                for row in range(len(batch)):
                    tags, scores, ranks = self.source_views(batch, cands, row)
                    ranked.append(Ranked.sorted(tags, np.mean(list(scores.values()), axis=0), scores, ranks))
                return ranked, cands
    """

    kind: ClassVar[str]
    """Its name in :data:`ENSEMBLES` and in the bundle's ``ensemble.json``."""

    threads: int | None = 1
    """OpenMP and BLAS threads while the tagger scores, ranks and explains a batch
    (:func:`math_threads`); ``None``: the libraries' defaults (every core)."""

    def __init__(self, vocabulary: Vocabulary, scorers: Sequence[Scorer]) -> None:
        if not scorers:
            raise ModelError("an ensemble needs at least one scorer")
        self.vocabulary = vocabulary
        self.scorers = list(scorers)

    @property
    def needs_embeddings(self) -> bool:
        return any(s.needs_embeddings for s in self.scorers)

    @overload
    def scorer(self, name: str) -> Scorer: ...

    @overload
    def scorer(self, name: str, cls: type[S]) -> S: ...

    def scorer(self, name: str, cls: type[Scorer] = Scorer) -> Scorer:
        """The scorer called ``name``; with ``cls``, checked to be one (KeyError when absent)."""
        for s in self.scorers:
            if s.name == name:
                if not isinstance(s, cls):
                    raise ModelError(f"scorer {name!r} is a {type(s).__name__}, not a {cls.__name__}")
                return s
        raise KeyError(name)

    def gather(self, batch: Batch) -> list[Candidates]:
        """Step 1 of every kind: each scorer's own candidates, in scorer order."""
        return [s.score(batch) for s in self.scorers]

    def source_views(self, batch: Batch, cands: list[Candidates],
                     row: int) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Every tag some scorer proposed for artwork ``row`` (sorted), with each scorer's score
        for it and its 1-based rank among that scorer's candidates (0: not proposed)."""
        tags = np.unique(np.concatenate([np.asarray(c.tags[row], dtype=np.int64) for c in cands]))
        scores = {s.name: s.score_tags(batch, c, row, tags) for s, c in zip(self.scorers, cands)}
        ranks = {s.name: _ranks(np.asarray(c.tags[row], dtype=np.int64), tags) for s, c in zip(self.scorers, cands)}
        return tags, scores, ranks

    @abstractmethod
    def rank(self, batch: Batch, cands: list[Candidates] | None = None) -> tuple[list[Ranked], list[Candidates]]:
        """Per artwork, the candidates sorted by probability (:class:`Ranked`), and the scorers'
        candidates they came from (``cands``, when given, is what :meth:`gather` returned)."""

    # -- storage -------------------------------------------------------------

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for s in self.scorers:
            s.save(directory / "scorers" / s.name)
        spec = {"kind": self.kind, "scorers": [s.name for s in self.scorers], **self._spec()}
        (directory / "ensemble.json").write_text(json.dumps(spec, indent=2) + "\n")
        self._save(directory)

    @classmethod
    def load(cls, directory: Path, vocabulary: Vocabulary) -> BaseEnsemble:
        spec = read_spec(directory)
        kind = spec.get("kind", DEFAULT_KIND)
        if kind != cls.kind:
            raise ModelError(f"{directory / 'ensemble.json'} holds a {kind!r} ensemble, not {cls.kind!r}")
        with loading_together():  # scorers trained on the same fields share their index
            scorers = [get_scorer_class(name).load(directory / "scorers" / name, vocabulary) for name in spec["scorers"]]
        return cls._load(directory, vocabulary, scorers, spec)

    def _spec(self) -> dict[str, Any]:
        """What this kind adds to ``ensemble.json``."""
        return {}

    def _save(self, directory: Path) -> None:
        """Writes what this kind learned beside ``ensemble.json``."""

    @classmethod
    def _load(cls, directory: Path, vocabulary: Vocabulary, scorers: list[Scorer],
              spec: dict[str, Any]) -> BaseEnsemble:
        """The ensemble from its loaded scorers, ``ensemble.json`` and what :meth:`_save` wrote."""
        return cls(vocabulary, scorers)


class Ensemble(BaseEnsemble):
    """The two-step ensemble: the scorers' candidates, merged by a learned re-ranker."""

    kind = "two-step"

    reranker_predictor: RerankerPredictor | None
    """The re-ranker's probabilities, compiled (:mod:`arttag.model.forest`); ``None`` when untrained."""

    def __init__(self, vocabulary: Vocabulary, scorers: Sequence[Scorer], reranker: Any = None) -> None:
        super().__init__(vocabulary, scorers)
        self.reranker = reranker  # also sets reranker_predictor
        usage = np.array([t.usage for t in vocabulary], dtype=np.float64)
        self._log_usage = np.log1p(usage)
        groups = {g: i for i, g in enumerate(sorted({t.group or "" for t in vocabulary}))}
        self._group = np.array([groups[t.group or ""] for t in vocabulary], dtype=np.int64)
        self._group_code = _category_codes([t.group or "" for t in vocabulary])
        self._area_code = _category_codes([t.area or "" for t in vocabulary])
        self.feature_names = self._feature_names()

    @property
    def reranker(self) -> Any:
        """The fitted re-ranker (a scikit-learn classifier; ``None``: untrained). :meth:`_merge`
        asks :attr:`reranker_predictor` for its probabilities: the same figures, compiled."""
        return self._reranker

    @reranker.setter
    def reranker(self, model: Any) -> None:
        self._reranker = model
        self.reranker_predictor = RerankerPredictor(model) if model is not None else None

    def _feature_names(self) -> list[str]:
        names = []
        for s in self.scorers:
            names += [f"{s.name}.score", f"{s.name}.rank", f"{s.name}.rel", f"{s.name}.proposed"]
            names += [f"{s.name}.{f}" for f in s.extra_features]
            names += [f"{s.name}.doc.{f}" for f in s.doc_feature_names]
        names += ["n_proposed", "log_usage", "unseen", "group_support", "group_candidates", "supervised_sum"]
        names += list(CATEGORICAL)
        return names

    # -- features ------------------------------------------------------------

    def features(self, batch: Batch, cands: list[Candidates]) -> BatchFeatures:
        """Features of every (artwork, candidate) pair of the batch, built for the whole batch at
        once (the same numbers as :meth:`pair_features` artwork by artwork, in less time): the
        one path of serving (:meth:`rank`) and of training (:meth:`fit_reranker`)."""
        pairs = Pairs.union(cands, len(batch), len(self.vocabulary))
        tags, rows, n = pairs.tags, pairs.rows, len(pairs)
        cols: list[np.ndarray] = []
        src_scores: dict[str, np.ndarray] = {}
        src_ranks: dict[str, np.ndarray] = {}
        supervised = np.zeros(n)
        proposed = np.zeros(n)
        for s, c in zip(self.scorers, cands):
            scores, extra = s.score_pairs(batch, c, pairs)
            ranks = pairs.ranks(c.tags)
            top = np.array([float(x[0]) if len(x) else 0.0 for x in c.scores] or [0.0])[rows]
            rel = np.divide(scores, top, out=np.zeros(n), where=top > 0)
            cols += [scores, np.where(ranks > 0, ranks, s.params.limit + 1), rel, (ranks > 0).astype(float)]
            cols += [extra.get(f, np.zeros(n)) for f in s.extra_features]
            cols += [np.asarray(c.doc_features[f])[rows] for f in s.doc_feature_names]
            src_scores[s.name] = scores
            src_ranks[s.name] = ranks
            proposed += ranks > 0
            if s.supervised:
                supervised += scores
        # each artwork's groups apart: (row, group) as one code
        n_groups = int(self._group.max()) + 1 if len(self._group) else 1
        groups = rows * n_groups + self._group[tags]
        _, where = np.unique(groups, return_inverse=True)
        group_sum = np.bincount(where, weights=supervised)
        group_cnt = np.bincount(where, weights=(supervised > 0).astype(float))
        cols += [
            proposed,
            self._log_usage[tags],
            (self._log_usage[tags] == 0).astype(float),
            group_sum[where] - supervised,
            group_cnt[where] - (supervised > 0),
            supervised,
            self._group_code[tags],
            self._area_code[tags],
        ]
        matrix = np.column_stack(cols) if n else np.zeros((0, len(self.feature_names)))
        return BatchFeatures(pairs, matrix, src_scores, src_ranks)

    def pair_features(self, batch: Batch, cands: list[Candidates], row: int) -> PairFeatures:
        """Features of artwork ``row``'s candidates alone (:meth:`features` builds a whole batch's)."""
        return self.features(batch, cands).row(row)

    # -- step 2 ---------------------------------------------------------------

    def rank(self, batch: Batch, cands: list[Candidates] | None = None) -> tuple[list[Ranked], list[Candidates]]:
        cands = cands if cands is not None else self.gather(batch)
        feats = self.features(batch, cands)
        probs = self._merge(feats.matrix) if len(feats.matrix) else np.zeros(0)
        return feats.ranked(probs), cands

    def _merge(self, features: np.ndarray) -> np.ndarray:
        """Probability that a cataloguer would assign each candidate."""
        if self.reranker_predictor is None:
            # Untrained fallback: the mean of the supervised scorers' scores.
            cols = [self.feature_names.index(f"{s.name}.score") for s in self.scorers if s.supervised]
            cols = cols or [self.feature_names.index(f"{self.scorers[0].name}.score")]
            return np.clip(features[:, cols].mean(axis=1), 0.0, 1.0)
        return self.reranker_predictor(features, self.threads)

    def new_reranker(self, params: RerankerParams, pairs: int, progress: bool = False) -> Any:
        """The unfitted step-2 classifier for ``pairs`` learning pairs of this ensemble's features:
        what :meth:`fit_reranker` fits, and what a benchmark fits on other pairs to compare."""
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(
            max_iter=params.max_iter, learning_rate=params.learning_rate,
            max_leaf_nodes=params.max_leaf_nodes, min_samples_leaf=params.min_samples_leaf,
            l2_regularization=params.l2_regularization, random_state=params.random_state,
            early_stopping=pairs > 10_000, validation_fraction=0.1, n_iter_no_change=20,
            categorical_features=[self.feature_names.index(f) for f in CATEGORICAL],
            verbose=2 if progress else 0,  # per-round lines for _fit_showing_rounds; same model
        )

    def fit_reranker(self, batch: Batch, gold: Sequence[set[int]], params: RerankerParams | None = None,
                     progress: bool = False, negatives: Sequence[set[int]] | None = None,
                     negative_weight: float = 2.0,
                     extra: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, Any]:
        """Learn step 2 on artworks the scorers were not trained on; returns a short report.

        ``negatives`` (per artwork, tag indices a curator rejected) weigh ``negative_weight``
        times as much as other wrong candidates; the report counts them (``rejected_negatives``).
        ``extra`` (features, labels) are more candidates to learn from, built elsewhere with the
        same features (:func:`arttag.model.training.recent_lesson`)."""
        params = params or RerankerParams()
        cands = self.gather(batch)
        feats = self.features(batch, cands)
        x = feats.matrix
        y = feats.pairs.marks(gold).astype(np.int8)
        weight = None
        if negatives is not None:
            rejected = feats.pairs.marks(negatives) & ~y.astype(bool)
            weight = np.where(rejected, negative_weight, 1.0)
        reachable = sum(len(gold[row] & {int(t) for c in cands for t in c.tags[row]}) for row in range(len(batch)))
        total_gold = sum(len(g) for g in gold)
        report = {"pairs": int(len(y)), "positives": int(y.sum()), "artworks": len(batch),
                  "candidate_recall": reachable / total_gold if total_gold else 0.0}
        if weight is not None:
            report["rejected_negatives"] = int((weight != 1.0).sum())
        if extra is not None:
            x = np.vstack([x, extra[0].astype(x.dtype, copy=False)])
            y = np.concatenate([y, extra[1].astype(np.int8, copy=False)])
            weight = None if weight is None else np.concatenate([weight, np.ones(len(extra[1]))])
            report["extra_pairs"] = int(len(extra[1]))
        if len(np.unique(y)) < 2 or y.sum() < 5:
            log.warning("re-ranker not trained: too few positive candidates (%d); using the score mean", int(y.sum()))
            self.reranker = None
            report["trained"] = False
            return report
        model = self.new_reranker(params, len(y), progress)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=params.threads):
            if progress:
                _fit_showing_rounds(model, x, y, weight)
            else:
                model.fit(x, y, sample_weight=weight)
        self.reranker = model
        report["trained"] = True
        report["iterations"] = int(model.n_iter_)
        return report

    # -- storage -------------------------------------------------------------

    def _spec(self) -> dict[str, Any]:
        return {"features": self.feature_names}

    def _save(self, directory: Path) -> None:
        if self.reranker is not None:
            joblib.dump(self.reranker, directory / "reranker.joblib")

    @classmethod
    def _load(cls, directory: Path, vocabulary: Vocabulary, scorers: list[Scorer],
              spec: dict[str, Any]) -> Ensemble:
        path = directory / "reranker.joblib"
        reranker = joblib.load(path) if path.exists() else None
        ens = cls(vocabulary, scorers, reranker)
        if ens.feature_names != spec.get("features"):
            raise ModelError("bundle was trained with other re-ranker features; retrain it")
        if ens.reranker_predictor is not None:
            ens.reranker_predictor.prepare()  # compiled now rather than in the first batch
        for scorer in scorers:
            scorer.prepare()  # e.g. the searches' int8 copies: now rather than in the first batch
        return ens


# -- registry -----------------------------------------------------------------

ENSEMBLES: dict[str, str] = {
    "two-step": "arttag.model.ensemble:Ensemble",
}
"""Ensemble kinds to their classes (``module:attribute``), imported only when a bundle names them."""

DEFAULT_KIND = "two-step"
"""The kind of a bundle whose ``ensemble.json`` names none (bundles written before kinds existed)."""


def get_ensemble_class(kind: str) -> type[BaseEnsemble]:
    return load_plugin(ENSEMBLES, kind, "ensemble kind")


def read_spec(directory: Path) -> dict[str, Any]:
    """The bundle's ``ensemble.json``."""
    path = directory / "ensemble.json"
    try:
        spec = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from exc
    if not isinstance(spec, dict) or not isinstance(spec.get("scorers"), list):
        raise ModelError(f"{path}: not an ensemble description (no scorer list)")
    return spec


def load_ensemble(directory: Path, vocabulary: Vocabulary) -> BaseEnsemble:
    """The ensemble saved in ``directory``, of the kind its ``ensemble.json`` names."""
    kind = read_spec(directory).get("kind", DEFAULT_KIND)
    return get_ensemble_class(str(kind)).load(directory, vocabulary)


class _RoundsToProgressBar(io.TextIOBase):
    """Takes scikit-learn's verbose boosting lines ("[12/800] 1 tree, ...") and moves a bar."""

    _ROUND = re.compile(r"\[(\d+)/(\d+)\]")

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def write(self, text: str) -> int:
        for done, total in self._ROUND.findall(text):
            self.bar.total = int(total)
            self.bar.update(int(done) - self.bar.n)
        return len(text)


def _fit_showing_rounds(model: Any, x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> None:
    """``model.fit`` with a progress bar over the boosting rounds (training takes minutes on
    the full catalogue and would otherwise be silent); early stopping ends the bar early."""
    from tqdm import tqdm

    with tqdm(total=model.max_iter, desc="re-ranker rounds", unit="round") as bar, \
            contextlib.redirect_stdout(_RoundsToProgressBar(bar)):
        model.fit(x, y, sample_weight=weight)
    model.set_params(verbose=0)  # the stored model (and so the bundle's version) as without a bar
