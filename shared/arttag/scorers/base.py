"""The scorer contract: the public methods live here, subclasses implement only ``_hook``s.

A scorer learns from a :class:`Corpus` of tagged training artworks and, for a
:class:`Batch` of artworks, returns its top candidates per artwork with their
scores (:class:`Candidates`). It can score any other tag on request
(:meth:`Scorer.score_tags`, used by the ensemble to fill in the candidates
other scorers proposed) and explain any score with the evidence that produced
it (:meth:`Scorer.explain`), and say in a few words what that evidence shows
(:meth:`Scorer.summarise_evidence`, for the suggestion's one-sentence summary).

Example of a new scorer (it proposes the most used tags to every artwork)::

    class PriorScorer(Scorer):
        name = "prior"

        def _fit(self, corpus):
            self.prior = np.asarray(corpus.labels.sum(axis=0)).ravel() / corpus.labels.shape[0]

        def _score(self, batch, limit):
            top = top_k(self.prior, limit)
            return Candidates(self.name, [top] * len(batch), [self.prior[top]] * len(batch))

        def _score_tags(self, batch, cands, row, tags):
            return self.prior[tags]

        def _save(self, directory):
            np.save(directory / "prior.npy", self.prior)

        def _load(self, directory):
            self.prior = np.load(directory / "prior.npy")

Register it in :data:`arttag.scorers.registry.SCORERS` to train and load it by name.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Hashable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from arttag.catalogue.text import build_fields, build_text
from arttag.catalogue.vocabulary import Vocabulary
from arttag.errors import ModelError
from arttag.events import (
    ArtworkMetadata,
    Evidence,
    NeighbourEvidence,
    TagTextEvidence,
    TermEvidence,
)
from arttag.scorers.topk import top_k_with_values


def save_fitted(obj: Any, directory: Path, stem: str) -> None:
    """Store a fitted scikit-learn object as ``<stem>.pkl`` (plain pickle, protocol 5).

    Not joblib: joblib unpickles with the pure-Python unpickler, which takes seconds for a
    TF-IDF vocabulary of half a million terms (6.2 s against 0.14 s for the full-Tate
    vectorizer), and a worker restarted after a crash serves nothing until its model is loaded.
    """
    with open(directory / f"{stem}.pkl", "wb") as fh:
        pickle.dump(obj, fh, protocol=5)


_SHARED: ContextVar[dict[Hashable, Any] | None] = ContextVar("arttag_shared_loads", default=None)


@contextmanager
def loading_together() -> Iterator[None]:
    """Within this block, files of equal content load once (:func:`load_fitted`, :func:`load_sparse`,
    :func:`derived`): the scorers of one bundle trained on the same fields (``tfidf``,
    ``tfidf_artist``, ``linear``) then hold the same vectorizer and index objects, which is what
    lets a batch compute their query vectors and similarities once (:attr:`Batch.memo`).
    Objects loaded so are shared: a scorer replaces them (as learning does), never changes them."""
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def _shared(key: Hashable, make: Callable[[], Any]) -> Any:
    table = _SHARED.get()
    if table is None:
        return make()
    if key not in table:
        table[key] = make()
    return table[key]


def derived(source: Any, what: str, make: Callable[[], Any]) -> Any:
    """``make()``, shared among the scorers loaded together that derive ``what`` from the same ``source``."""
    return _shared(("derived", id(source), what), make)


def load_fitted(directory: Path, stem: str) -> Any:
    """What :func:`save_fitted` stored; bundles written before it hold ``<stem>.joblib``."""
    path = directory / f"{stem}.pkl"
    if path.exists():
        data = path.read_bytes()  # bundles are trusted, as documented
        return _shared(("pickle", hashlib.sha256(data).hexdigest()), lambda: pickle.loads(data))
    import joblib

    return joblib.load(directory / f"{stem}.joblib")


def load_sparse(path: Path) -> sp.csr_matrix:
    """A matrix stored with ``scipy.sparse.save_npz``, as CSR."""
    data = path.read_bytes()
    return _shared(("sparse", hashlib.sha256(data).hexdigest()), lambda: sp.load_npz(io.BytesIO(data)).tocsr())


class ScorerParams(BaseModel):
    """Parameters every scorer has; subclasses add their own fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    limit: int = Field(30, ge=1, le=2000, description="Candidates proposed per artwork")


@dataclass
class Batch:
    """Artworks to score: their text, their fields and (for embedding scorers) their embeddings."""

    texts: list[str]
    fields: list[dict[str, str]]
    embeddings: np.ndarray | None = None
    accession_numbers: list[str | None] | None = None
    """Per artwork, its accession number (not part of the text; see :mod:`arttag.scorers.accession`)."""
    memo: dict[Hashable, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    """What scorers derive from this batch and may share (the TF-IDF query vectors and
    similarities of scorers holding the same index): keyed by the objects it was computed
    from, so a scorer whose index changed computes its own."""

    def __len__(self) -> int:
        return len(self.texts)

    @classmethod
    def from_metadata(cls, metas: Sequence[ArtworkMetadata], embeddings: np.ndarray | None = None) -> Batch:
        return cls([build_text(m) for m in metas], [build_fields(m) for m in metas], embeddings,
                   [m.accession_number for m in metas])


@dataclass
class Corpus(Batch):
    """Tagged training artworks: a :class:`Batch` plus ids, titles and the label matrix."""

    ids: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    labels: sp.csr_matrix | None = None
    """Binary (artworks x vocabulary) matrix of the tags each artwork carries."""
    tag_embeddings: np.ndarray | None = None
    """Embeddings of every vocabulary tag's :attr:`Tag.text` (for the semantic scorer)."""


@dataclass
class Candidates:
    """One scorer's answer for a batch: per artwork, candidate tag indices sorted by score."""

    scorer: str
    tags: list[np.ndarray]
    scores: list[np.ndarray]
    features: list[dict[str, np.ndarray]] = field(default_factory=list)
    """Per artwork, extra per-candidate features for the re-ranker (aligned with ``tags``)."""
    doc_features: dict[str, np.ndarray] = field(default_factory=dict)
    """Per-artwork features (one value per artwork)."""
    state: Any = None
    """What the scorer needs to explain or extend these results (neighbours, query vectors)."""

    def __len__(self) -> int:
        return len(self.tags)


@dataclass
class Pairs:
    """(artwork, tag) pairs of a batch, artwork by artwork and by tag index within each: the
    candidates the re-ranker describes, all at once (:meth:`Scorer.score_pairs`)."""

    tags: np.ndarray
    """Tag index of each pair (int64)."""
    bounds: np.ndarray
    """Artwork ``row``'s pairs are ``tags[bounds[row]:bounds[row + 1]]``."""
    n_tags: int
    """The vocabulary's size: ``row * n_tags + tag`` is a pair's :attr:`keys` entry."""

    @classmethod
    def union(cls, cands: Sequence[Candidates], n_rows: int, n_tags: int) -> Pairs:
        """Every tag some scorer proposed, per artwork (the union of their candidates)."""
        keys = np.unique(np.concatenate([flat_keys(c.tags, n_tags) for c in cands] or [np.zeros(0, np.int64)]))
        return cls.from_keys(keys, n_rows, n_tags)

    @classmethod
    def from_keys(cls, keys: np.ndarray, n_rows: int, n_tags: int) -> Pairs:
        pairs = cls(keys % n_tags, np.searchsorted(keys, np.arange(n_rows + 1, dtype=np.int64) * n_tags), n_tags)
        pairs.__dict__["keys"] = keys
        return pairs

    def __len__(self) -> int:
        return len(self.tags)

    @property
    def n_rows(self) -> int:
        return len(self.bounds) - 1

    @cached_property
    def rows(self) -> np.ndarray:
        """The artwork (batch row) of each pair."""
        return np.repeat(np.arange(self.n_rows, dtype=np.int64), np.diff(self.bounds))

    @cached_property
    def keys(self) -> np.ndarray:
        """``row * n_tags + tag`` of each pair, ascending."""
        return self.rows * self.n_tags + self.tags

    def row(self, row: int) -> slice:
        return slice(int(self.bounds[row]), int(self.bounds[row + 1]))

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Position of each pair in the sorted ``keys`` (-1 where absent): one search for the batch."""
        if not len(keys):
            return np.full(len(self), -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(keys, self.keys), len(keys) - 1)
        return np.where(keys[pos] == self.keys, pos, -1)

    def marks(self, per_row: Sequence[Collection[int]]) -> np.ndarray:
        """Whether each pair's tag is in its artwork's set of tag indices (its gold tags, say)."""
        arrays = [np.fromiter((int(t) for t in tags), dtype=np.int64, count=len(tags)) for tags in per_row]
        return self.lookup(np.unique(flat_keys(arrays, self.n_tags))) >= 0

    def ranks(self, proposed: Sequence[np.ndarray]) -> np.ndarray:
        """1-based position of each pair's tag among its artwork's ``proposed`` tags (0 where absent)."""
        keys = flat_keys(proposed, self.n_tags)
        lengths = np.fromiter((len(t) for t in proposed), dtype=np.int64, count=len(proposed))
        rank = np.arange(1, len(keys) + 1, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        out = np.zeros(len(self))
        at = np.searchsorted(self.keys, keys)
        at = np.minimum(at, max(len(self) - 1, 0))
        found = (self.keys[at] == keys) if len(self) else np.zeros(0, dtype=bool)
        # reversed: a tag proposed twice keeps its first (best) rank
        out[at[found][::-1]] = rank[found][::-1]
        return out


def flat_keys(per_row: Sequence[np.ndarray], n_tags: int) -> np.ndarray:
    """``row * n_tags + tag`` of per-artwork tag arrays, concatenated in row order."""
    if not len(per_row):
        return np.zeros(0, dtype=np.int64)
    lengths = np.fromiter((len(t) for t in per_row), dtype=np.int64, count=len(per_row))
    tags = np.concatenate([np.asarray(t, dtype=np.int64) for t in per_row])
    return np.repeat(np.arange(len(per_row), dtype=np.int64) * n_tags, lengths) + tags


class Scorer(ABC):
    """Base class of every scorer. Public: fit, learn, score, score_tags, explain, summarise_evidence, save, load."""

    name: ClassVar[str] = "base"
    Params: ClassVar[type[ScorerParams]] = ScorerParams
    needs_embeddings: ClassVar[bool] = False
    supervised: ClassVar[bool] = True
    """Learns from human tags (kNN, TF-IDF) rather than from tag texts alone (semantic)."""
    extra_features: ClassVar[tuple[str, ...]] = ()
    cited_artworks: ClassVar[str] = "similar tagged artwork(s)"
    """How the artworks this scorer cites as evidence relate to the one being tagged (for summaries)."""
    relation: ClassVar[str | None] = None
    """Set when the cited artworks are related by the record ("same group"), not by likeness: their
    similarity is then a vote weight, and a reader is shown this relation instead."""
    doc_feature_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, vocabulary: Vocabulary, params: ScorerParams | dict[str, Any] | None = None) -> None:
        self.vocabulary = vocabulary
        if isinstance(params, self.Params):
            self.params = params
        else:
            self.params = self.Params.model_validate(dict(params or {}))
        self._fitted = False

    # -- public API -----------------------------------------------------------

    def fit(self, corpus: Corpus) -> None:
        if corpus.labels is None or corpus.labels.shape != (len(corpus), len(self.vocabulary)):
            raise ModelError(f"{self.name}: corpus labels must be (artworks x {len(self.vocabulary)} tags)")
        if len(corpus) == 0:
            raise ModelError(f"{self.name}: no tagged training artworks")
        self._check_embeddings(corpus)
        self._fit(corpus)
        self._fitted = True

    def prepare(self) -> None:
        """Make what serving needs and the first batch would otherwise make (called after
        loading; a no-op by default, the searching scorers build their search here)."""

    def learn(self, corpus: Corpus) -> None:
        """Draw on more tagged artworks from now on, without retraining (online learning from
        curators' decisions, :mod:`arttag.curation.learning`).

        An artwork whose id the scorer already holds replaces its earlier entry (its tags
        changed); one with no tags is forgotten. A no-op by default: the neighbour scorers
        override :meth:`_learn`, others keep what they were trained on. Not safe to call while
        another thread scores with this scorer (the tagger applies it between batches).
        """
        self._check_fitted()
        if len(corpus) == 0:
            return
        if corpus.labels is None or corpus.labels.shape != (len(corpus), len(self.vocabulary)):
            raise ModelError(f"{self.name}: corpus labels must be (artworks x {len(self.vocabulary)} tags)")
        if len(set(corpus.ids)) != len(corpus):
            raise ModelError(f"{self.name}: an artwork is learned once per call")
        self._check_embeddings(corpus)
        self._learn(corpus)

    def score(self, batch: Batch, limit: int | None = None) -> Candidates:
        """The top ``limit`` (default ``params.limit``) candidates of each artwork in the batch."""
        self._check_fitted()
        if len(batch) == 0:
            return Candidates(self.name, [], [], [], {n: np.zeros(0) for n in self.doc_feature_names})
        self._check_embeddings(batch)
        cands = self._score(batch, limit or self.params.limit)
        if len(cands) != len(batch):
            raise ModelError(f"{self.name}: scored {len(cands)} artworks for a batch of {len(batch)}")
        return cands

    def score_tags(self, batch: Batch, cands: Candidates, row: int, tags: np.ndarray) -> np.ndarray:
        """This scorer's scores for arbitrary tags of artwork ``row`` (0 where it has nothing to say)."""
        self._check_fitted()
        return np.asarray(self._score_tags(batch, cands, row, np.asarray(tags, dtype=np.int64)), dtype=np.float64)

    def tag_features(self, cands: Candidates, row: int, tags: np.ndarray) -> dict[str, np.ndarray]:
        """The :attr:`extra_features` of artwork ``row`` for arbitrary tags (those another scorer proposed)."""
        return {}

    def score_pairs(self, batch: Batch, cands: Candidates, pairs: Pairs) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """:meth:`score_tags` and :meth:`tag_features` of every pair of the batch at once, aligned
        with ``pairs``: the same numbers, bit for bit, as asking artwork by artwork (what the
        re-ranker's features are built from, in training and serving alike). Scorers override
        :meth:`_score_pairs` to look them up for the whole batch in one go."""
        self._check_fitted()
        scores, extra = self._score_pairs(batch, cands, pairs)
        return np.asarray(scores, dtype=np.float64), extra

    def _score_pairs(self, batch: Batch, cands: Candidates, pairs: Pairs) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        scores = np.zeros(len(pairs))
        extra = {f: np.zeros(len(pairs)) for f in self.extra_features}
        for row in range(pairs.n_rows):
            span = pairs.row(row)
            tags = pairs.tags[span]
            if not len(tags):
                continue
            scores[span] = self.score_tags(batch, cands, row, tags)
            if self.extra_features:
                for f, v in self.tag_features(cands, row, tags).items():
                    if f in extra:
                        extra[f][span] = v
        return scores, extra

    def explain(self, batch: Batch, cands: Candidates, row: int, tag: int, max_evidence: int = 5) -> list[Evidence]:
        """The evidence behind this scorer's score for tag index ``tag`` of artwork ``row``."""
        self._check_fitted()
        return self._explain(batch, cands, row, tag, max_evidence)

    def explain_many(self, batch: Batch, cands: Candidates, wanted: Sequence[tuple[int, int]],
                     max_evidence: int = 5) -> list[list[Evidence]]:
        """:meth:`explain` for many (row, tag index) pairs at once, in their order: what the
        explanations of one batch ask for. The same evidence as :meth:`explain` gives for each;
        scorers whose evidence shares work across pairs override :meth:`_explain_many`."""
        self._check_fitted()
        if not wanted:
            return []
        return self._explain_many(batch, cands, wanted, max_evidence)

    def cites(self, score: float, rank: int) -> bool:
        """Whether this scorer's view of a tag goes into the tag's explanation, given the score it
        gave the tag and its 1-based rank among its own candidates (0: not proposed).
        By default when it scored or proposed the tag."""
        return score > 0 or rank > 0

    def summarise_evidence(self, evidence: Sequence[Evidence]) -> list[str]:
        """Phrases for the suggestion's one-sentence summary about ``evidence``, what :meth:`explain`
        gave for one tag (:func:`arttag.model.explain.summarise` joins them). Empty by default: the
        scorer is then only named among those that proposed the tag. A scorer overrides it for
        the evidence its ``_explain`` gives, with :meth:`_neighbours_phrase`, :meth:`_terms_phrase`
        and :meth:`_tag_text_phrase` or its own wording."""
        return []

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "params.json").write_text(self.params.model_dump_json(indent=2) + "\n")
        self._save(directory)

    @classmethod
    def load(cls, directory: Path, vocabulary: Vocabulary) -> Scorer:
        try:
            params = cls.Params.model_validate_json((directory / "params.json").read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(f"{cls.name}: cannot read {directory / 'params.json'}: {exc}") from exc
        scorer = cls(vocabulary, params)
        scorer._load(directory)
        scorer._fitted = True
        return scorer

    # -- hooks ---------------------------------------------------------------

    @abstractmethod
    def _fit(self, corpus: Corpus) -> None: ...

    @abstractmethod
    def _score(self, batch: Batch, limit: int) -> Candidates: ...

    @abstractmethod
    def _score_tags(self, batch: Batch, cands: Candidates, row: int, tags: np.ndarray) -> np.ndarray: ...

    def _explain(self, batch: Batch, cands: Candidates, row: int, tag: int, max_evidence: int) -> list[Evidence]:
        return []

    def _learn(self, corpus: Corpus) -> None:
        """Add or replace (by id) tagged artworks; see :meth:`learn`."""

    def _explain_many(self, batch: Batch, cands: Candidates, wanted: Sequence[tuple[int, int]],
                      max_evidence: int) -> list[list[Evidence]]:
        return [self._explain(batch, cands, row, tag, max_evidence) for row, tag in wanted]

    def _save(self, directory: Path) -> None:
        raise NotImplementedError

    def _load(self, directory: Path) -> None:
        raise NotImplementedError

    # -- helpers -------------------------------------------------------------

    def _neighbours_phrase(self, evidence: Sequence[Evidence]) -> list[str]:
        """How many cited artworks carry the tag (related as :attr:`cited_artworks` says), and the closest."""
        neighbours = [e for e in evidence if isinstance(e, NeighbourEvidence)]
        if not neighbours:
            return []
        best = neighbours[0]
        decided = ", tagged by a curation decision" if best.from_decision else ""
        return [f"{self.name}: {len(neighbours)} {self.cited_artworks} carry it "
                f"(closest '{best.title}', similarity {best.similarity:.2f}{decided})"]

    def _terms_phrase(self, evidence: Sequence[Evidence], shown: int = 3) -> list[str]:
        """The first ``shown`` words with their fields."""
        terms = [e for e in evidence if isinstance(e, TermEvidence)]
        if not terms:
            return []
        return [f"{self.name} words: " + ", ".join(f"'{t.term}' ({t.field})" for t in terms[:shown])]

    def _tag_text_phrase(self, evidence: Sequence[Evidence]) -> list[str]:
        """The tag text compared and its similarity."""
        texts = [e for e in evidence if isinstance(e, TagTextEvidence)]
        if not texts:
            return []
        return [f"{self.name}: tag text '{texts[0].tag_text}' similarity {texts[0].similarity:.2f}"]

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise ModelError(f"scorer {self.name!r} is not trained")

    def _check_embeddings(self, batch: Batch) -> None:
        if not self.needs_embeddings:
            return
        if batch.embeddings is None or len(batch.embeddings) != len(batch):
            raise ModelError(f"scorer {self.name!r} needs one embedding per artwork")


def group_by_row(wanted: Sequence[tuple[int, int]]) -> dict[int, list[int]]:
    """Positions in ``wanted`` ((row, tag) pairs) by row, for explanations that share work per artwork."""
    rows: dict[int, list[int]] = {}
    for i, (row, _) in enumerate(wanted):
        rows.setdefault(row, []).append(i)
    return rows


def top_k(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest values, largest first, ties by smaller index
    (:func:`arttag.scorers.topk.top_k_with_values`)."""
    return top_k_with_values(np.asarray(values).reshape(1, -1), k)[0][0]

