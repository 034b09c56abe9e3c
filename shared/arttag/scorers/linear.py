"""A linear model per tag over the artwork's MPNet embedding and its field TF-IDF.

Multi-output ridge regression (closed form, one solve for every tag at once)
from ``[embedding, SVD(field TF-IDF), 1]`` to the tag indicator matrix. The
neighbour scorers copy the tags of similar artworks; this one learns which
directions of the text (words, fields, meaning) predict each tag across all of
its artworks, so it generalises where no close neighbour exists. The TF-IDF
is the field-weighted one of :mod:`arttag.scorers.tfidf`, reduced by a
truncated SVD so that the solve stays small (``dims x dims``) whatever the
vocabulary size.

A score is a sum of contributions, so it is explained exactly: each word's
share is ``tfidf(word) * (components.T @ W_svd[:, tag])[word]``, and the
embedding's share is ``embedding @ W_emb[:, tag]``; the explanation lists the
largest positive ones (field, word, contribution) and the embedding's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from arttag.events import Evidence, TermEvidence, term_evidence
from arttag.scorers.base import (
    Batch,
    Candidates,
    Corpus,
    Scorer,
    ScorerParams,
    group_by_row,
    load_fitted,
    save_fitted,
)
from arttag.scorers.search import SearchingScorer, SearchMode
from arttag.scorers.tfidf import FieldVectorizer, _default_weights, query_vectors

EMBEDDING_FIELD = "text embedding"


class LinearParams(ScorerParams):
    components: int = Field(384, ge=1, le=4096, description="SVD dimensions of the field TF-IDF")
    alpha: float = Field(0.3, gt=0, description="Ridge penalty")
    weights: dict[str, float] = Field(default_factory=_default_weights, description="Weight of each field block")
    char_min_df: int = Field(2, ge=1)
    svd_iterations: int = Field(3, ge=1, le=20)
    random_state: int = 0
    chunk_size: int = Field(512, ge=1)
    # exact by default: ridge scores lie close together, so int8 needs so many candidates to
    # find the same top tags that it saves nothing (docs/decisions.md)
    search: SearchMode = Field("exact", description="Search for each artwork's best tags (arttag.scorers.search): "
                               "exact, int8-first, or auto (int8 from 8,192 tags on)")


class LinearScorer(SearchingScorer, Scorer):
    name = "linear"
    Params = LinearParams
    params: LinearParams
    needs_embeddings = True

    def _fit(self, corpus: Corpus) -> None:
        from sklearn.decomposition import TruncatedSVD

        self.vectorizer = FieldVectorizer(self.params.weights, self.params.char_min_df)
        x = self.vectorizer.fit_transform(corpus.fields)
        k = max(1, min(self.params.components, x.shape[1] - 1, x.shape[0] - 1))
        svd = TruncatedSVD(k, algorithm="randomized", n_iter=self.params.svd_iterations,
                           random_state=self.params.random_state)
        svd.fit(x)
        self.components = svd.components_.astype(np.float32)  # (k x features)
        a = self._design(corpus.embeddings, x)
        gram = a.T @ a
        gram[np.diag_indices_from(gram)] += self.params.alpha
        labels = sp.csr_matrix(corpus.labels, dtype=np.float32)
        target = np.asarray((labels.T @ a).T)  # (dims x tags)
        self._set_weights(np.linalg.solve(gram.astype(np.float64), target.astype(np.float64)).astype(np.float32))

    def _set_weights(self, weights: np.ndarray) -> None:
        """``weights`` (dims x tags) kept tag by tag in memory: a tag's weights are then one
        contiguous row, which is what scoring given tags and explaining a tag read."""
        self._by_tag = np.ascontiguousarray(weights.T)
        self.weights = self._by_tag.T

    def searched_matrix(self) -> np.ndarray:
        """The tags' weights, a tag per row (:class:`arttag.scorers.search.SearchingScorer`)."""
        return self._by_tag

    def _design(self, embeddings: np.ndarray, x: sp.csr_matrix) -> np.ndarray:
        z = np.asarray(x @ self.components.T, dtype=np.float32)
        e = np.asarray(embeddings, dtype=np.float32)
        return np.hstack([e, z, np.ones((len(e), 1), dtype=np.float32)])

    def _score(self, batch: Batch, limit: int) -> Candidates:
        x = query_vectors(batch, self.vectorizer)
        a = self._design(batch.embeddings, x)
        tags, scores = [], []
        search = self.searcher()
        for start in range(0, len(a), self.params.chunk_size):
            found, block = search.search(a[start:start + self.params.chunk_size], limit)
            for idx, row in zip(found, block):
                tags.append(idx)
                scores.append(row.astype(np.float64))
        return Candidates(self.name, tags, scores, [{} for _ in tags], state={"design": a, "tfidf": x})

    def _score_tags(self, batch: Batch, cands: Candidates, row: int, tags: np.ndarray) -> np.ndarray:
        return self._by_tag[tags] @ cands.state["design"][row]

    def _row_terms(self, cands: Candidates, row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Artwork ``row``'s TF-IDF columns and values, and the SVD components on those columns
        (columns x components): what every tag's word contributions of that artwork multiply."""
        x = cands.state["tfidf"]
        span = slice(x.indptr[row], x.indptr[row + 1])
        cols = x.indices[span]
        return cols, x.data[span], self.components[:, cols].T

    def _shares(self, cands: Candidates, row: int, terms: tuple[np.ndarray, np.ndarray, np.ndarray],
                tag: int) -> np.ndarray:
        """The embedding's contribution to the tag's score, then each word's (in ``terms``' order)."""
        dim = self.weights.shape[0] - 1 - len(self.components)
        w = self._by_tag[tag]
        _, values, components = terms
        embedding = float(cands.state["design"][row, :dim] @ w[:dim])
        return np.concatenate([[embedding], values * (components @ w[dim:dim + len(self.components)])])

    def contributions(self, cands: Candidates, row: int, tag: int) -> list[tuple[str, str, float]]:
        """(field, term, contribution) of every word with a non-zero share, and of the embedding;
        with the intercept they sum to the score."""
        terms = self._row_terms(cands, row)
        shares = self._shares(cands, row, terms, tag).tolist()
        out = [(EMBEDDING_FIELD, "(whole text)", shares[0])]
        for col, value in zip(terms[0].tolist(), shares[1:]):
            out.append((self.vectorizer.feature_field[col], self.vectorizer.feature_term[col], value))
        return out

    def intercept(self, tag: int) -> float:
        return float(self._by_tag[tag, -1])

    def _explain(self, batch: Batch, cands: Candidates, row: int, tag: int, max_evidence: int) -> list[Evidence]:
        parts = [p for p in self.contributions(cands, row, tag) if p[2] > 0]
        parts.sort(key=lambda p: -p[2])
        return [TermEvidence(field=f, term=t, weight=round(c, 4)) for f, t, c in parts[:max_evidence]]

    def _explain_many(self, batch: Batch, cands: Candidates, wanted: Sequence[tuple[int, int]],
                      max_evidence: int) -> list[list[Evidence]]:
        out: list[list[Evidence]] = [[] for _ in wanted]
        fields, words = self.vectorizer.feature_field, self.vectorizer.feature_term
        for row, items in group_by_row(wanted).items():
            terms = self._row_terms(cands, row)  # once per artwork, for all its tags
            cols = terms[0].tolist()
            # Each tag's shares are its own products (:meth:`_shares`); their order is sorted for
            # all the row's tags at once: a stable sort of the whole row, then its positive
            # shares, is the stable sort of the positive shares that _explain makes.
            shares = np.vstack([self._shares(cands, row, terms, wanted[i][1]) for i in items])
            order = np.argsort(-shares, axis=1, kind="stable")
            ranked = np.take_along_axis(shares, order, axis=1)
            shown = ranked > 0
            shown &= np.cumsum(shown, axis=1) <= max_evidence
            t_at, k_at = np.nonzero(shown)
            for t, c, v in zip(t_at.tolist(), order[t_at, k_at].tolist(), ranked[t_at, k_at].tolist()):
                out[items[t]].append(term_evidence(fields[cols[c - 1]] if c else EMBEDDING_FIELD,
                                                   words[cols[c - 1]] if c else "(whole text)", round(v, 4)))
        return out

    def summarise_evidence(self, evidence: Sequence[Evidence]) -> list[str]:
        return self._terms_phrase(evidence)

    def _save(self, directory: Path) -> None:
        save_fitted(self.vectorizer, directory, "vectorizer")
        # uncompressed: float16 hardly compresses, and inflating 146 MB took 3 s of every start
        np.savez(directory / "linear.npz", components=self.components.astype(np.float16),
                 weights=np.ascontiguousarray(self.weights, dtype=np.float16))

    def _load(self, directory: Path) -> None:
        self.vectorizer = load_fitted(directory, "vectorizer")
        data = np.load(directory / "linear.npz")
        self.components = data["components"].astype(np.float32)
        self._set_weights(data["weights"].astype(np.float32))
