"""kNN over TF-IDF vectors of the metadata fields (word and character n-grams).

Each field is vectorised on its own (title words and character n-grams, group
title, artists and date, medium, and the rest), weighted, and the blocks are
joined and L2-normalised, so every feature belongs to one field and a
similarity splits into per-word contributions: the explanation cites the
neighbours that voted (exactly, as in :mod:`arttag.scorers.knn`) and the words
of this artwork that made them similar.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from arttag.events import Evidence, TermEvidence, term_evidence
from arttag.scorers.base import (
    Batch,
    Candidates,
    Corpus,
    derived,
    load_fitted,
    load_sparse,
    save_fitted,
)
from arttag.scorers.knn import KnnParams, KnnVoting, Votes

# block name -> (fields joined, analyzer, n-gram range)
BLOCKS: dict[str, tuple[tuple[str, ...], str, tuple[int, int]]] = {
    "title": (("title",), "word", (1, 2)),
    "title_chars": (("title",), "char_wb", (3, 5)),
    "group_title": (("group_title",), "word", (1, 2)),
    "artists": (("artists",), "word", (1, 2)),
    "medium": (("medium",), "word", (1, 2)),
    "other": (("movements", "inscription", "description"), "word", (1, 1)),
}


def _default_weights() -> dict[str, float]:
    return {"title": 1.0, "title_chars": 1.0, "group_title": 0.8, "artists": 0.6, "medium": 0.3, "other": 0.4}


class TfidfParams(KnnParams):
    power: float = Field(3.0, gt=0, le=20)
    neighbours: int = Field(30, ge=1, le=1000)
    weights: dict[str, float] = Field(default_factory=_default_weights, description="Weight of each field block")
    char_min_df: int = Field(2, ge=1, description="Character n-grams rarer than this are dropped")
    chunk_size: int = Field(256, ge=1)


class _State(Votes):
    """Per-artwork voting state, plus the query vectors (for term evidence)."""

    query: sp.csr_matrix


class FieldVectorizer:
    """TF-IDF per field block, weighted and joined; knows each column's field and term."""

    def __init__(self, weights: dict[str, float], char_min_df: int) -> None:
        self.weights = weights
        self.char_min_df = char_min_df
        self.blocks: list[tuple[str, TfidfVectorizer]] = []
        self.feature_field: list[str] = []
        self.feature_term: list[str] = []
        self.is_char: np.ndarray = np.zeros(0, dtype=bool)

    @staticmethod
    def _texts(fields: list[dict[str, str]], names: tuple[str, ...]) -> list[str]:
        return [" ".join(f.get(n, "") for n in names).strip() for f in fields]

    def fit_transform(self, fields: list[dict[str, str]]) -> sp.csr_matrix:
        self.blocks, terms, owners, chars = [], [], [], []
        for block, (names, analyzer, ngrams) in BLOCKS.items():
            if self.weights.get(block, 0.0) <= 0:
                continue
            vec = TfidfVectorizer(
                analyzer=analyzer, ngram_range=ngrams, sublinear_tf=True, lowercase=True,
                min_df=self.char_min_df if analyzer.startswith("char") else 1,
                dtype=np.float32,
                **({} if analyzer.startswith("char") else {"token_pattern": r"(?u)\b\w+\b"}),
            )
            try:
                vec.fit(self._texts(fields, names))
            except ValueError:  # empty vocabulary: no training artwork has this field
                continue
            self.blocks.append((block, vec))
            vocab = vec.get_feature_names_out()
            terms.extend(vocab.tolist())
            owners.extend([names[0]] * len(vocab))
            chars.extend([analyzer.startswith("char")] * len(vocab))
        self.feature_term, self.feature_field = terms, owners
        self.is_char = np.array(chars, dtype=bool)
        return self.transform(fields)

    def transform(self, fields: list[dict[str, str]]) -> sp.csr_matrix:
        parts = []
        for block, vec in self.blocks:
            names = BLOCKS[block][0]
            parts.append(vec.transform(self._texts(fields, names)) * self.weights[block])
        if not parts:
            return sp.csr_matrix((len(fields), 0), dtype=np.float32)
        return normalize(sp.hstack(parts, format="csr"), norm="l2", copy=False).astype(np.float32)


def _append_entries(m: sp.csr_matrix, shape: tuple[int, int], rows: np.ndarray, cols: np.ndarray,
                    values: np.ndarray) -> sp.csr_matrix:
    """``m``, grown to ``shape``, with the entries ``(rows, cols) = values`` added at the ends of
    their rows: one pass over the arrays instead of a sparse sum and a transpose. The entries
    of a row need not stay sorted; scipy's products do not need them sorted."""
    indptr = np.concatenate([m.indptr, np.full(shape[0] - m.shape[0], m.indptr[-1], dtype=m.indptr.dtype)])
    order = np.argsort(rows, kind="stable")
    rows, cols, values = rows[order], cols[order], values[order]
    where = indptr[rows + 1]
    data = np.insert(m.data, where, values.astype(m.data.dtype))
    indices = np.insert(m.indices, where, cols.astype(m.indices.dtype))
    added = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=shape[0]))]).astype(indptr.dtype)
    out = sp.csr_matrix((data, indices, indptr + added), shape=shape)
    out.has_sorted_indices = False
    return out


def query_vectors(batch: Batch, vectorizer: FieldVectorizer) -> sp.csr_matrix:
    """``vectorizer.transform(batch.fields)``, once per batch for all scorers holding this vectorizer."""
    key = ("field-tfidf", id(vectorizer))
    hit = batch.memo.get(key)
    if hit is None or hit[0] is not vectorizer:
        hit = batch.memo[key] = (vectorizer, vectorizer.transform(batch.fields))
    return hit[1]


def similarities(q: sp.csr_matrix, matrix_t: sp.csr_matrix) -> np.ndarray:
    """``(q @ matrix_t).toarray()``, computed as a dense product over the query's own terms:
    a few hundred rows of the index instead of a sparse-by-sparse product (same sums, same order)."""
    cols = np.unique(q.indices)
    dense = np.zeros((q.shape[0], len(cols)), dtype=np.float32)
    if len(cols):
        rows = np.repeat(np.arange(q.shape[0]), np.diff(q.indptr))
        dense[rows, np.searchsorted(cols, q.indices)] = q.data
    return np.asarray(dense @ matrix_t[cols], dtype=np.float32)


def shared_similarities(batch: Batch, q: sp.csr_matrix, start: int, stop: int, matrix_t: sp.csr_matrix) -> np.ndarray:
    """:func:`similarities` of rows ``start:stop`` of ``q``, shared by the scorers that hold the same
    index (``tfidf`` and ``tfidf_artist``); only the latest block is kept, so a large batch holds one."""
    key = ("tfidf-similarities", id(matrix_t))
    hit = batch.memo.get(key)
    if hit is None or hit[0] is not matrix_t or hit[1] is not q or hit[2] != (start, stop):
        hit = batch.memo[key] = (matrix_t, q, (start, stop), similarities(q[start:stop], matrix_t))
    return hit[3]


def rows_on_columns(matrix: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``matrix[rows][:, cols].toarray()`` without scipy's fancy indexing (which costs more than
    the arithmetic for a few dozen rows)."""
    rows = np.asarray(rows, dtype=np.int64)
    starts, ends = matrix.indptr[rows], matrix.indptr[rows + 1]
    lengths = ends - starts
    out = np.zeros((len(rows), len(cols)), dtype=matrix.dtype)
    total = int(lengths.sum())
    if not total or not len(cols):
        return out
    offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(total)
    entry_rows = np.repeat(np.arange(len(rows)), lengths)
    entry_cols = matrix.indices[offsets]
    sorter = np.argsort(cols, kind="stable")
    sorted_cols = cols[sorter]
    at = np.minimum(np.searchsorted(sorted_cols, entry_cols), len(cols) - 1)
    hit = sorted_cols[at] == entry_cols
    out[entry_rows[hit], sorter[at[hit]]] = matrix.data[offsets[hit]]
    return out


class TfidfKnnScorer(KnnVoting):
    """kNN over field-weighted TF-IDF (word + character n-grams)."""

    name = "tfidf"
    cited_artworks = "similar tagged artwork(s) by text"
    Params = TfidfParams
    params: TfidfParams

    def _fit(self, corpus: Corpus) -> None:
        self._set_training(corpus)
        self.vectorizer = FieldVectorizer(self.params.weights, self.params.char_min_df)
        self.matrix = self.vectorizer.fit_transform(corpus.fields)
        self.matrix_t = self.matrix.T.tocsr()

    def _learn(self, corpus: Corpus) -> None:
        old_n = len(self.ids)
        positions = self._add_training(corpus)
        rows = np.flatnonzero(positions >= 0)
        if not len(rows):
            return
        at = positions[rows]
        vectors = self.vectorizer.transform([corpus.fields[r] for r in rows]).tocoo()  # the bundle's vocabulary
        m, mt = self.matrix, self.matrix_t
        replaced = at[at < old_n]
        if len(replaced):
            # The old entries become explicit zeros, in place (the tagger learns between batches):
            # cheaper than rebuilding matrices of millions of entries for one artwork.
            for j in replaced:
                m.data[m.indptr[j]:m.indptr[j + 1]] = 0.0
            mt.data[np.isin(mt.indices, replaced)] = 0.0
        # a forgotten artwork gets no entries: similar to nothing, it never votes
        keep = np.array([len(self.label_lists[j]) > 0 for j in at])[vectors.row]
        owner, feature, value = at[vectors.row[keep]], vectors.col[keep], vectors.data[keep]
        n, features = len(self.ids), m.shape[1]
        self.matrix = _append_entries(m, (n, features), owner, feature, value)
        self.matrix_t = _append_entries(mt, (features, n), feature, owner, value)

    def _neighbours(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        q = query_vectors(batch, self.vectorizer)
        k = self.params.neighbours
        out_i, out_s = [], []
        for start in range(0, q.shape[0], self.params.chunk_size):
            sims = shared_similarities(batch, q, start, start + self.params.chunk_size, self.matrix_t)
            i, s = self._top_neighbours(batch, start, sims, k)
            out_i.append(i)
            out_s.append(s)
        return np.vstack(out_i), np.vstack(out_s)

    def _top_neighbours(self, batch: Batch, start: int, sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar training artworks that may vote, of rows ``start``... of the batch."""
        return self._topk_rows(self._eligible(batch, start, sims), k)

    def _eligible(self, batch: Batch, start: int, sims: np.ndarray) -> np.ndarray:
        """Similarities of rows ``start``... of the batch, zeroed where a training artwork may not vote."""
        return sims

    def _score(self, batch: Batch, limit: int) -> Candidates:
        cands = super()._score(batch, limit)
        cands.state.__class__ = _State  # the same votes, with the query vectors
        cands.state.query = query_vectors(batch, self.vectorizer)
        return cands

    def term_contributions(self, cands: Candidates, row: int, tag: int) -> list[tuple[str, str, float]]:
        """(field, term, contribution) of this artwork's features to its similarity with the
        voters for ``tag``, weighted like their votes; largest first."""
        voters = self.voters(cands, row, tag)
        if not voters:
            return []
        q = cands.state.query[row]
        cols, qvals = q.indices, q.data
        if len(cols) == 0:
            return []
        w = np.array([s ** (self.params.power - 1) for _, s in voters])  # d(sim^p)/d(sim) up to p
        rows = self.matrix[[j for j, _ in voters]][:, cols].toarray()
        contrib = qvals * (w @ rows)
        out = []
        for c in np.argsort(-contrib):
            if contrib[c] <= 0:
                break
            out.append((self.vectorizer.feature_field[cols[c]], self.vectorizer.feature_term[cols[c]],
                        float(contrib[c]), bool(self.vectorizer.is_char[cols[c]])))
        # Whole words read better than character n-grams; n-grams only when no word matched.
        words = [o for o in out if not o[3]]
        chosen = words if words else out
        return [(f, t, c) for f, t, c, _ in chosen]

    def _explain(self, batch: Batch, cands: Candidates, row: int, tag: int, max_evidence: int) -> list[Evidence]:
        neighbours = super()._explain(batch, cands, row, tag, max_evidence)
        terms = [TermEvidence(field=f, term=t, weight=round(c, 4))
                 for f, t, c in self.term_contributions(cands, row, tag)[:max_evidence]]
        return [*neighbours, *terms]

    def _explain_row(self, cands: Candidates, row: int, items: list[int], voters: list[np.ndarray],
                     max_evidence: int, out: list[list[Evidence]]) -> None:
        """The voters (:meth:`KnnVoting._explain_row`), then the words: :meth:`term_contributions`
        (the first ``max_evidence``) of each tag. The row's neighbours are read from the index
        once, on its own words only, for all its tags; the arithmetic per tag is
        :meth:`term_contributions`' own, so the words and weights are too."""
        super()._explain_row(cands, row, items, voters, max_evidence, out)
        q = cands.state.query
        span = slice(q.indptr[row], q.indptr[row + 1])
        cols, qvals = q.indices[span], q.data[span]
        voted = [(i, pos) for i, pos in zip(items, voters) if len(pos)]
        if not len(cols) or not voted:
            return
        idx, sims = cands.state[row][:2]
        dense = rows_on_columns(self.matrix, idx, cols)
        # each neighbour's vote weight once per row (the same Python power, so the same floats)
        exponent = self.params.power - 1  # d(sim^p)/d(sim) up to p
        weights = np.array([s ** exponent for s in sims.tolist()])
        # Each tag's sums are one product of its own, as in term_contributions (a product over
        # several tags at once may round differently); sorting and choosing are row-wise over
        # all the row's tags at once, and a row of argsort is the argsort of that row.
        contrib = qvals * np.vstack([weights[pos] @ dense[pos] for _, pos in voted])
        order = np.argsort(-contrib, axis=1)
        ranked = np.take_along_axis(contrib, order, axis=1)
        positive = ranked > 0
        shown = positive & ~self.vectorizer.is_char[cols][order]
        # whole words read better than character n-grams: n-grams only when no word matched
        shown = np.where(shown.any(axis=1, keepdims=True), shown, positive)
        shown &= np.cumsum(shown, axis=1) <= max_evidence
        t_at, k_at = np.nonzero(shown)  # row-major: each tag's words, largest first
        fields, terms = self.vectorizer.feature_field, self.vectorizer.feature_term
        cited: dict[tuple[int, float], Evidence] = {}
        for t, c, v in zip(t_at.tolist(), order[t_at, k_at].tolist(), ranked[t_at, k_at].tolist()):
            key = (c, round(v, 4))
            e = cited.get(key)
            if e is None:
                col = int(cols[c])
                e = cited[key] = term_evidence(fields[col], terms[col], key[1])
            out[voted[t][0]].append(e)

    def summarise_evidence(self, evidence: Sequence[Evidence]) -> list[str]:
        return [*self._neighbours_phrase(evidence), *self._terms_phrase(evidence)]

    def _save(self, directory: Path) -> None:
        self._save_training(directory)
        save_fitted(self.vectorizer, directory, "vectorizer")
        sp.save_npz(directory / "matrix.npz", self.matrix)

    def _load(self, directory: Path) -> None:
        self._load_training(directory)
        self.vectorizer = load_fitted(directory, "vectorizer")
        self.matrix = load_sparse(directory / "matrix.npz")
        self.matrix_t = derived(self.matrix, "transposed", lambda: self.matrix.T.tocsr())


class SameArtistTfidfParams(TfidfParams):
    neighbours: int = Field(20, ge=1, le=1000)


class SameArtistTfidfScorer(TfidfKnnScorer):
    """The same TF-IDF kNN, but only the same artist's training works may vote.

    Artists are catalogued in their own idiom (Turner's sketchbook pages tag places and
    landscape features, a modern print its formal qualities); a neighbour by the same
    hand is better evidence than an equally similar text by someone else. Artworks
    whose byline matches no training artwork get no candidates from this scorer.
    """

    name = "tfidf_artist"
    cited_artworks = "similar tagged artwork(s) by the same artist"
    Params = SameArtistTfidfParams

    @staticmethod
    def _artist(fields: dict[str, str]) -> str:
        return fields.get("artists", "").split(",")[0].strip().lower()

    def _fit(self, corpus: Corpus) -> None:
        super()._fit(corpus)
        self._set_artists([self._artist(f) for f in corpus.fields])

    def _learn(self, corpus: Corpus) -> None:
        super()._learn(corpus)
        grown = len(self.ids) - len(self.artists)
        artists = self.artists + [""] * grown
        codes = np.concatenate([self._artist_code, np.full(grown, self._codes.setdefault("", len(self._codes)))])
        for r, artwork_id in enumerate(corpus.ids):
            j = self._index_of.get(artwork_id)
            if j is not None:
                artists[j] = self._artist(corpus.fields[r])
                codes[j] = self._codes.setdefault(artists[j], len(self._codes))
        # only the changed entries: recoding every artist would cost more than the rest of learning
        self.artists, self._artist_code = artists, codes.astype(np.int64)

    def _set_artists(self, artists: list[str]) -> None:
        self.artists = artists
        codes: dict[str, int] = {}
        self._artist_code = np.array([codes.setdefault(a, len(codes)) for a in artists], dtype=np.int64)
        self._codes = codes

    def _codes_of(self, batch: Batch, start: int, rows: int) -> np.ndarray:
        keys = [self._artist(f) for f in batch.fields[start:start + rows]]
        return np.array([self._codes.get(a, -1) if a else -1 for a in keys], dtype=np.int64)

    def _eligible(self, batch: Batch, start: int, sims: np.ndarray) -> np.ndarray:
        codes = self._codes_of(batch, start, len(sims))
        return np.where(self._artist_code[None, :] == codes[:, None], sims, 0.0)

    def _top_neighbours(self, batch: Batch, start: int, sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        # Only the artist's own works are searched (a few hundred of tens of thousands). What
        # :meth:`_eligible` would add, similarity 0, never votes: the padding stands for it.
        k = min(k, sims.shape[1])
        idx = np.zeros((len(sims), k), dtype=np.int64)
        best = np.zeros((len(sims), k), dtype=sims.dtype)
        works = self._works_by_artist()
        for r, code in enumerate(self._codes_of(batch, start, len(sims)).tolist()):
            own = works.get(code)
            if own is None:
                continue
            i, s = self._topk_rows(sims[r, own][None, :], k)
            idx[r, :i.shape[1]], best[r, :i.shape[1]] = own[i[0]], np.maximum(s[0], 0.0)
        return idx, best

    def _works_by_artist(self) -> dict[int, np.ndarray]:
        """Artist code -> the training artworks by that artist, in training order."""
        works = getattr(self, "_works", None)
        if works is None or works[0] is not self._artist_code:
            codes = self._artist_code
            order = np.argsort(codes, kind="stable")
            bounds = np.flatnonzero(np.diff(codes[order])) + 1
            groups = np.split(order, bounds) if len(order) else []
            works = self._works = (codes, {int(codes[g[0]]): g for g in groups})
        return works[1]

    def _save(self, directory: Path) -> None:
        super()._save(directory)
        (directory / "artists.json").write_text(json.dumps(self.artists))

    def _load(self, directory: Path) -> None:
        super()._load(directory)
        self._set_artists(json.loads((directory / "artists.json").read_text()))
