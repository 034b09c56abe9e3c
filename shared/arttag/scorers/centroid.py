"""Per-tag prototypes: the normalised sum of the embeddings of the training artworks carrying each tag.

``score(tag) = cos(artwork, sum_j e_j)`` over the tag's training artworks ``j``,
which splits exactly into per-artwork contributions ``(artwork . e_j) / |sum_j e_j|``:
the explanation cites the tag's training artworks with the largest contributions.
It generalises where single neighbours are noisy (tags with many examples).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from arttag.events import Evidence, NeighbourEvidence
from arttag.scorers.base import Batch, Candidates, Corpus, Scorer, ScorerParams, top_k


class CentroidParams(ScorerParams):
    min_examples: int = Field(1, ge=1, description="Tags with fewer training artworks get no prototype")
    chunk_size: int = Field(512, ge=1)


class CentroidScorer(Scorer):
    name = "centroid"
    Params = CentroidParams
    params: CentroidParams
    needs_embeddings = True
    doc_feature_names = ("top1",)

    def _fit(self, corpus: Corpus) -> None:
        labels = sp.csc_matrix(corpus.labels)
        self.ids, self.titles = list(corpus.ids), list(corpus.titles)
        self.embeddings = np.ascontiguousarray(corpus.embeddings, dtype=np.float32)
        self.members = labels  # (artworks x tags), column = the tag's artworks
        sums = np.asarray(labels.T @ self.embeddings, dtype=np.float32)
        counts = np.asarray(labels.sum(axis=0)).ravel()
        norms = np.linalg.norm(sums, axis=1)
        ok = (counts >= self.params.min_examples) & (norms > 0)
        self.norms = np.where(ok, norms, 1.0).astype(np.float32)
        self.prototypes = np.where(ok[:, None], sums / self.norms[:, None], 0.0).astype(np.float32)

    def _score(self, batch: Batch, limit: int) -> Candidates:
        tags, scores = [], []
        top1 = np.zeros(len(batch))
        for start in range(0, len(batch), self.params.chunk_size):
            sims = np.asarray(batch.embeddings[start:start + self.params.chunk_size], dtype=np.float32) @ self.prototypes.T
            for r, row in enumerate(sims):
                idx = top_k(row, limit)
                tags.append(idx)
                scores.append(row[idx].astype(np.float64))
                top1[start + r] = row[idx[0]] if len(idx) else 0.0
        return Candidates(self.name, tags, scores, [{} for _ in tags], {"top1": top1})

    def _score_tags(self, batch: Batch, cands: Candidates, row: int, tags: np.ndarray) -> np.ndarray:
        return self.prototypes[tags] @ np.asarray(batch.embeddings[row], dtype=np.float32)

    def contributions(self, batch: Batch, row: int, tag: int) -> list[tuple[int, float]]:
        """(training index, contribution) of each artwork carrying the tag; they sum to the score."""
        col = self.members.indices[self.members.indptr[tag]:self.members.indptr[tag + 1]]
        if not len(col) or not self.prototypes[tag].any():
            return []
        sims = self.embeddings[col] @ np.asarray(batch.embeddings[row], dtype=np.float32)
        contrib = sims / self.norms[tag]
        return [(int(col[i]), float(contrib[i])) for i in np.argsort(-contrib)]

    def _explain(self, batch: Batch, cands: Candidates, row: int, tag: int, max_evidence: int) -> list[Evidence]:
        q = np.asarray(batch.embeddings[row], dtype=np.float32)
        out = []
        for j, _ in self.contributions(batch, row, tag)[:max_evidence]:
            out.append(NeighbourEvidence(artwork_id=self.ids[j], title=self.titles[j],
                                         similarity=round(float(self.embeddings[j] @ q), 4)))
        return out

    def summarise_evidence(self, evidence: Sequence[Evidence]) -> list[str]:
        return self._neighbours_phrase(evidence)

    def _save(self, directory: Path) -> None:
        import json

        with open(directory / "items.json", "w", encoding="utf-8") as fh:
            json.dump({"ids": self.ids, "titles": self.titles}, fh, ensure_ascii=False)
        np.save(directory / "embeddings.npy", self.embeddings.astype(np.float16))
        sp.save_npz(directory / "members.npz", sp.csc_matrix(self.members, dtype=np.float32))

    def _load(self, directory: Path) -> None:
        import json

        with open(directory / "items.json", encoding="utf-8") as fh:
            items = json.load(fh)
        self.ids, self.titles = items["ids"], items["titles"]
        embeddings = np.load(directory / "embeddings.npy").astype(np.float32)
        members = sp.load_npz(directory / "members.npz").tocsr()
        corpus = Corpus([""] * len(self.ids), [{}] * len(self.ids), embeddings, ids=self.ids,
                        titles=self.titles, labels=members)
        self._fit(corpus)
