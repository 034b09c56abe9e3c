"""kNN over a blend of two similarities: ``alpha * tfidf + (1 - alpha) * embedding`` cosine.

Words catch exact names and places, embeddings catch paraphrases; neighbours
that are close in both are the most reliable voters. Voting and evidence as in
:mod:`arttag.scorers.knn` (the cited similarity is the blended one).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from arttag.scorers.base import Batch, Corpus, load_fitted, load_sparse, save_fitted
from arttag.scorers.knn import KnnVoting
from arttag.scorers.tfidf import (
    FieldVectorizer,
    TfidfParams,
    query_vectors,
    similarities,
)


class HybridParams(TfidfParams):
    alpha: float = Field(0.5, ge=0, le=1, description="Weight of the TF-IDF similarity")


class HybridKnnScorer(KnnVoting):
    name = "hybrid"
    Params = HybridParams
    params: HybridParams
    needs_embeddings = True

    def _fit(self, corpus: Corpus) -> None:
        self._set_training(corpus)
        self.vectorizer = FieldVectorizer(self.params.weights, self.params.char_min_df)
        self.matrix_t = self.vectorizer.fit_transform(corpus.fields).T.tocsr()
        self.embeddings = np.ascontiguousarray(corpus.embeddings, dtype=np.float32)

    def _neighbours(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        q = query_vectors(batch, self.vectorizer)
        e = np.asarray(batch.embeddings, dtype=np.float32)
        a = self.params.alpha
        out_i, out_s = [], []
        for start in range(0, q.shape[0], self.params.chunk_size):
            end = start + self.params.chunk_size
            sims = a * similarities(q[start:end], self.matrix_t) + (1 - a) * (e[start:end] @ self.embeddings.T)
            i, s = self._topk_rows(sims, self.params.neighbours)
            out_i.append(i)
            out_s.append(s)
        return np.vstack(out_i), np.vstack(out_s)

    def _save(self, directory: Path) -> None:
        self._save_training(directory)
        save_fitted(self.vectorizer, directory, "vectorizer")
        sp.save_npz(directory / "matrix_t.npz", self.matrix_t)
        np.save(directory / "embeddings.npy", self.embeddings.astype(np.float16))

    def _load(self, directory: Path) -> None:
        self._load_training(directory)
        self.vectorizer = load_fitted(directory, "vectorizer")
        self.matrix_t = load_sparse(directory / "matrix_t.npz")
        self.embeddings = np.load(directory / "embeddings.npy").astype(np.float32)
