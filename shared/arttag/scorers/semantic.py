"""Semantic matching: cosine between the artwork's embedding and each tag text's embedding.

It needs no human tags, so it can propose tags nobody has assigned yet; its
evidence is the tag text compared and the similarity.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import Field

from arttag.errors import ModelError
from arttag.events import Evidence, TagTextEvidence, tag_text_evidence
from arttag.scorers.base import Batch, Candidates, Corpus, Scorer, ScorerParams, top_k
from arttag.scorers.search import SearchingScorer, SearchMode


class SemanticParams(ScorerParams):
    limit: int = Field(30, ge=1, le=2000)
    chunk_size: int = Field(512, ge=1)
    search: SearchMode = Field("auto", description="Tag search (arttag.scorers.search): exact, int8-first, "
                               "or auto (int8 from 8,192 tags on)")


class SemanticScorer(SearchingScorer, Scorer):
    name = "semantic"
    Params = SemanticParams
    params: SemanticParams
    needs_embeddings = True
    supervised = False
    doc_feature_names = ("top1_sim", "mean_top_sim")

    def _fit(self, corpus: Corpus) -> None:
        if corpus.tag_embeddings is None or len(corpus.tag_embeddings) != len(self.vocabulary):
            raise ModelError("semantic scorer needs one embedding per vocabulary tag")
        self.tag_matrix = np.ascontiguousarray(corpus.tag_embeddings, dtype=np.float32)

    def similarities(self, embeddings: np.ndarray) -> np.ndarray:
        return np.asarray(embeddings, dtype=np.float32) @ self.tag_matrix.T

    def search(self, query_embedding: np.ndarray, limit: int) -> list[tuple[int, float]]:
        sims = self.similarities(query_embedding.reshape(1, -1))[0]
        return [(int(i), float(sims[i])) for i in top_k(sims, limit)]

    def _score(self, batch: Batch, limit: int) -> Candidates:
        tags, scores = [], []
        top1 = np.zeros(len(batch))
        meantop = np.zeros(len(batch))
        search = self.searcher()
        for start in range(0, len(batch), self.params.chunk_size):
            found, sims = search.search(batch.embeddings[start:start + self.params.chunk_size], limit)
            for r, (idx, row) in enumerate(zip(found, sims)):
                tags.append(idx)
                scores.append(row.astype(np.float64))
                top1[start + r] = row[0] if len(idx) else 0.0
                meantop[start + r] = row.mean() if len(idx) else 0.0
        return Candidates(self.name, tags, scores, [{} for _ in tags],
                          {"top1_sim": top1, "mean_top_sim": meantop}, state=None)

    def searched_matrix(self) -> np.ndarray:
        """The tags' embeddings (:class:`arttag.scorers.search.SearchingScorer`)."""
        return self.tag_matrix

    def _score_tags(self, batch: Batch, cands: Candidates, row: int, tags: np.ndarray) -> np.ndarray:
        q = np.asarray(batch.embeddings[row], dtype=np.float32)
        return self.tag_matrix[tags] @ q

    def _explain(self, batch: Batch, cands: Candidates, row: int, tag: int, max_evidence: int) -> list[Evidence]:
        sim = float(self._score_tags(batch, cands, row, np.array([tag]))[0])
        return [TagTextEvidence(tag_text=self.vocabulary.tags[tag].text, similarity=round(sim, 4))]

    def _explain_many(self, batch: Batch, cands: Candidates, wanted: Sequence[tuple[int, int]],
                      max_evidence: int) -> list[list[Evidence]]:
        # tag by tag, as _explain: a product over several tags at once may differ in the last bit
        tags = self.vocabulary.tags
        return [[tag_text_evidence(tags[tag].text, round(float(self._score_tags(batch, cands, row, np.array([tag]))[0]), 4))]
                for row, tag in wanted]

    def summarise_evidence(self, evidence: Sequence[Evidence]) -> list[str]:
        return self._tag_text_phrase(evidence)

    def _save(self, directory: Path) -> None:
        np.save(directory / "tag_embeddings.npy", self.tag_matrix.astype(np.float16))

    def _load(self, directory: Path) -> None:
        self.tag_matrix = np.load(directory / "tag_embeddings.npy").astype(np.float32)
        if len(self.tag_matrix) != len(self.vocabulary):
            raise ModelError("semantic scorer: tag embeddings do not match the vocabulary")
