"""Nearest tagged neighbours: each training artwork among the ``neighbours`` most
similar votes for its tags with weight ``similarity ** power``.

``score(tag) = sum(sim_j ** power for voters j carrying the tag) / sum(sim_j ** power for all neighbours)``,
so a score is exactly explained by the voters it cites (:class:`NeighbourEvidence`).
:class:`EmbeddingKnnScorer` searches over sentence embeddings; the TF-IDF scorer
(:mod:`arttag.scorers.tfidf`) reuses the voting over sparse word and character n-grams.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from arttag.events import Evidence, NeighbourEvidence, neighbour_evidence
from arttag.scorers.base import (
    Batch,
    Candidates,
    Corpus,
    Scorer,
    ScorerParams,
    group_by_row,
    top_k,
)


class KnnParams(ScorerParams):
    neighbours: int = Field(30, ge=1, le=1000, description="Training artworks that vote")
    power: float = Field(3.0, gt=0, le=20, description="Vote weight = similarity ** power")
    min_similarity: float = Field(0.0, ge=-1, le=1, description="Neighbours below this do not vote")
    chunk_size: int = Field(512, ge=1, description="Queries per similarity block (memory vs speed)")


class KnnVoting(Scorer):
    """Shared voting, features, evidence and storage; subclasses find the neighbours."""

    Params = KnnParams
    params: KnnParams
    extra_features = ("votes", "max_sim", "weight_sum", "top5_share")
    doc_feature_names = ("top1_sim", "mean_sim")

    # set by _fit/_load
    ids: list[str]
    titles: list[str]
    label_lists: list[np.ndarray]

    def _neighbours(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        """(indices, similarities), each (artworks x k), most similar first."""
        raise NotImplementedError

    def _set_training(self, corpus: Corpus) -> None:
        labels = sp.csr_matrix(corpus.labels)
        self.ids = list(corpus.ids)
        self.titles = list(corpus.titles)
        self.label_lists = [labels.indices[labels.indptr[i]:labels.indptr[i + 1]].astype(np.int64)
                            for i in range(labels.shape[0])]

    @staticmethod
    def _padded(rows: list[list[tuple[int, float]]]) -> tuple[np.ndarray, np.ndarray]:
        """Per-artwork (training index, similarity) lists, most similar first, as the
        (indices, similarities) arrays of :meth:`_neighbours`; padding has similarity 0 and never votes."""
        width = max([1, *(len(r) for r in rows)])
        idx = np.zeros((len(rows), width), dtype=np.int64)
        sims = np.zeros((len(rows), width), dtype=np.float32)
        for r, found in enumerate(rows):
            if found:
                idx[r, : len(found)], sims[r, : len(found)] = zip(*found)
        return idx, sims

    def _topk_rows(self, sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, sims.shape[1])
        idx = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < sims.shape[1] else np.tile(np.arange(sims.shape[1]), (sims.shape[0], 1))
        part = np.take_along_axis(sims, idx, axis=1)
        order = np.argsort(-part, axis=1, kind="stable")
        return np.take_along_axis(idx, order, axis=1), np.take_along_axis(part, order, axis=1)

    def _score(self, batch: Batch, limit: int) -> Candidates:
        nb_idx, nb_sim = self._neighbours(batch)
        p = self.params
        tags_out, scores_out, feats_out, votes_state = [], [], [], []
        top1 = np.zeros(len(batch))
        mean = np.zeros(len(batch))
        for row in range(len(batch)):
            idx, sims = nb_idx[row], nb_sim[row]
            keep = sims >= max(p.min_similarity, 1e-9)
            idx, sims = idx[keep], sims[keep]
            weights = np.power(sims.astype(np.float64), p.power)
            total = float(weights.sum()) or 1.0
            lists = [self.label_lists[j] for j in idx]
            lengths = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
            flat = np.concatenate(lists) if lists else np.zeros(0, dtype=np.int64)
            positions = np.repeat(np.arange(len(idx)), lengths)
            all_tags, inverse = np.unique(flat, return_inverse=True)
            all_wsum = np.bincount(inverse, weights=weights[positions], minlength=len(all_tags))
            all_votes = np.bincount(inverse, minlength=len(all_tags)).astype(np.float64)
            first = np.full(len(all_tags), len(idx), dtype=np.int64)
            np.minimum.at(first, inverse, positions)  # neighbours are sorted: the first voter is the closest
            all_max = sims[first].astype(np.float64) if len(all_tags) else np.zeros(0)
            # The vote among the closest five only: a sharper view of the same neighbourhood.
            near = positions < 5
            near_total = float(weights[:5].sum()) or 1.0
            all_near = np.bincount(inverse[near], weights=weights[positions[near]], minlength=len(all_tags)) / near_total
            order = top_k(all_wsum, limit)
            tags_out.append(all_tags[order].astype(np.int64))
            scores_out.append(np.minimum(all_wsum[order] / total, 1.0))
            feats_out.append({"votes": all_votes[order], "max_sim": all_max[order], "weight_sum": all_wsum[order],
                              "top5_share": all_near[order]})
            votes_state.append((idx, sims, total, (positions, inverse), all_tags, all_wsum, all_votes, all_max, all_near))
            top1[row] = float(nb_sim[row][0]) if nb_sim.shape[1] else 0.0
            mean[row] = float(nb_sim[row].mean()) if nb_sim.shape[1] else 0.0
        return Candidates(self.name, tags_out, scores_out, feats_out,
                          {"top1_sim": top1, "mean_sim": mean}, state=votes_state)

    def _positions(self, cands: Candidates, row: int, tags: np.ndarray) -> np.ndarray:
        voted = cands.state[row][4]  # sorted (np.unique)
        if not len(voted):
            return np.full(len(tags), -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(voted, tags), len(voted) - 1)
        return np.where(voted[pos] == tags, pos, -1)

    def _score_tags(self, batch: Batch, cands: Candidates, row: int, tags: np.ndarray) -> np.ndarray:
        total, wsum = cands.state[row][2], cands.state[row][5]
        pos = self._positions(cands, row, tags)
        return np.where(pos >= 0, np.minimum(wsum[pos] / total, 1.0), 0.0) if len(wsum) else np.zeros(len(tags))

    def tag_features(self, cands: Candidates, row: int, tags: np.ndarray) -> dict[str, np.ndarray]:
        """The extra features for arbitrary tags (those another scorer proposed)."""
        wsum, votes, max_sim, near = cands.state[row][5:9]
        if not len(wsum):
            return {name: np.zeros(len(tags)) for name in self.extra_features}
        pos = self._positions(cands, row, tags)
        hit = pos >= 0
        return {"votes": np.where(hit, votes[pos], 0.0), "max_sim": np.where(hit, max_sim[pos], 0.0),
                "weight_sum": np.where(hit, wsum[pos], 0.0), "top5_share": np.where(hit, near[pos], 0.0)}

    def voters(self, cands: Candidates, row: int, tag: int) -> list[tuple[int, float]]:
        """Every (training index, similarity) that voted for the tag, most similar first."""
        idx, sims, _, (positions, inverse) = cands.state[row][:4]
        [local] = self._positions(cands, row, np.array([tag], dtype=np.int64))
        if local < 0:
            return []
        return [(int(idx[pos]), float(sims[pos])) for pos in positions[inverse == local]]

    def voter_positions(self, cands: Candidates, row: int, tags: np.ndarray) -> list[np.ndarray]:
        """For each of ``tags``, the positions among artwork ``row``'s neighbours (``cands.state[row][0]``
        and ``[1]``: training indices and similarities) of the voters that :meth:`voters` lists, in its order.
        One grouping of the row's votes serves every tag."""
        positions, inverse = cands.state[row][3]
        local = self._positions(cands, row, np.asarray(tags, dtype=np.int64))
        order = np.argsort(inverse, kind="stable")  # stable: each tag's votes stay closest first
        grouped = inverse[order]
        starts = np.searchsorted(grouped, local, side="left")
        ends = np.searchsorted(grouped, local, side="right")
        empty = np.zeros(0, dtype=np.int64)
        return [positions[order[a:b]] if t >= 0 else empty for t, a, b in zip(local.tolist(), starts, ends)]

    def _cite(self, j: int, similarity: float) -> NeighbourEvidence:
        """The evidence that training artwork ``j`` voted with ``similarity`` (marked when a
        curation decision, not the training catalogue, tagged it)."""
        artwork_id = self.ids[j]
        if self.learned and artwork_id in self.learned:
            return NeighbourEvidence(artwork_id=artwork_id, title=self.titles[j],
                                     similarity=round(similarity, 4), from_decision=True)
        return NeighbourEvidence(artwork_id=artwork_id, title=self.titles[j], similarity=round(similarity, 4))

    def _explain(self, batch: Batch, cands: Candidates, row: int, tag: int, max_evidence: int) -> list[Evidence]:
        return [self._cite(j, s) for j, s in self.voters(cands, row, tag)[:max_evidence]]

    def _explain_many(self, batch: Batch, cands: Candidates, wanted: Sequence[tuple[int, int]],
                      max_evidence: int) -> list[list[Evidence]]:
        out: list[list[Evidence]] = [[] for _ in wanted]
        for row, items in group_by_row(wanted).items():
            tags = np.array([wanted[i][1] for i in items], dtype=np.int64)
            self._explain_row(cands, row, items, self.voter_positions(cands, row, tags), max_evidence, out)
        return out

    def _explain_row(self, cands: Candidates, row: int, items: list[int], voters: list[np.ndarray],
                     max_evidence: int, out: list[list[Evidence]]) -> None:
        """Appends to ``out[i]``, for each ``i`` of ``items`` (pairs of artwork ``row``), the evidence
        of the pair's tag, whose voters' positions :meth:`voter_positions` gave (``voters``, aligned)."""
        idx, sims = cands.state[row][:2]
        learned = self.learned
        # One evidence per neighbour of the row, shared by every tag it voted for (they are
        # frozen): the closest neighbours vote for most of an artwork's tags.
        cited: dict[int, Evidence] = {}
        for i, pos in zip(items, voters):
            evidence = out[i]
            for p in pos[:max_evidence].tolist():
                e = cited.get(p)
                if e is None:
                    j = int(idx[p])
                    artwork_id = self.ids[j]
                    e = cited[p] = neighbour_evidence(artwork_id, self.titles[j], round(float(sims[p]), 4),
                                                      bool(learned) and artwork_id in learned)
                evidence.append(e)

    def cites(self, score: float, rank: int) -> bool:
        # A voting score is exactly its voters: without a score there is nothing to cite.
        return score > 0

    def summarise_evidence(self, evidence: Sequence[Evidence]) -> list[str]:
        return self._neighbours_phrase(evidence)

    # -- online learning -------------------------------------------------------

    learned: set[str] | frozenset[str] = frozenset()
    """Ids of the artworks learned online with tags (:meth:`Scorer.learn`); cited as ``from_decision``."""

    def _add_training(self, corpus: Corpus) -> np.ndarray:
        """Puts the corpus's artworks among the voters and returns each one's training index: an
        id already held keeps its index and gets the new title and tags, a new id is appended;
        -1 for an untagged artwork the scorer never held (nothing to forget). An artwork
        learned with no tags stays at its index with an empty tag list: the subclass must
        keep it out of every neighbourhood (a zero row, no group), or it would take a
        neighbour's place and dilute the votes."""
        index = getattr(self, "_index_of", None)
        if index is None or len(index) != len(self.ids):
            index = self._index_of = {artwork_id: i for i, artwork_id in enumerate(self.ids)}
        if not isinstance(self.learned, set):
            self.learned = set(self.learned)
        labels = sp.csr_matrix(corpus.labels)
        positions = np.full(len(corpus), -1, dtype=np.int64)
        for r, artwork_id in enumerate(corpus.ids):
            tags = labels.indices[labels.indptr[r]:labels.indptr[r + 1]].astype(np.int64)
            j = index.get(artwork_id)
            if j is None:
                if not len(tags):
                    continue
                j = index[artwork_id] = len(self.ids)
                self.ids.append(artwork_id)
                self.titles.append(corpus.titles[r])
                self.label_lists.append(tags)
            else:
                self.titles[j] = corpus.titles[r]
                self.label_lists[j] = tags
            positions[r] = j
            if len(tags):
                self.learned.add(artwork_id)
            else:
                self.learned.discard(artwork_id)
        return positions

    # -- storage -------------------------------------------------------------

    def _save_training(self, directory: Path) -> None:
        with open(directory / "items.json", "w", encoding="utf-8") as fh:
            json.dump({"ids": self.ids, "titles": self.titles}, fh, ensure_ascii=False)
        lengths = np.array([len(x) for x in self.label_lists], dtype=np.int64)
        flat = np.concatenate(self.label_lists) if self.label_lists else np.zeros(0, dtype=np.int64)
        np.savez_compressed(directory / "labels.npz", lengths=lengths, tags=flat.astype(np.int32))

    def _load_training(self, directory: Path) -> None:
        with open(directory / "items.json", encoding="utf-8") as fh:
            items = json.load(fh)
        self.ids, self.titles = items["ids"], items["titles"]
        data = np.load(directory / "labels.npz")
        bounds = np.concatenate([[0], np.cumsum(data["lengths"])])
        flat = data["tags"].astype(np.int64)
        self.label_lists = [flat[bounds[i]:bounds[i + 1]] for i in range(len(data["lengths"]))]


class EmbeddingKnnScorer(KnnVoting):
    """kNN over sentence embeddings (cosine similarity of L2-normalised vectors)."""

    name = "knn"
    cited_artworks = "similar tagged artwork(s) by embedding"
    needs_embeddings = True

    def _fit(self, corpus: Corpus) -> None:
        self._set_training(corpus)
        self.matrix = np.ascontiguousarray(corpus.embeddings, dtype=np.float32)

    def _neighbours(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        q = np.asarray(batch.embeddings, dtype=np.float32)
        k = self.params.neighbours
        out_i, out_s = [], []
        for start in range(0, len(q), self.params.chunk_size):
            # matrix @ queries.T: the same dot products, bit for bit, by a faster BLAS path for
            # few queries against many training rows (about 25 % less time at a batch of 32)
            sims = np.ascontiguousarray((self.matrix @ q[start:start + self.params.chunk_size].T).T)
            i, s = self._topk_rows(sims, k)
            out_i.append(i)
            out_s.append(s)
        return np.vstack(out_i), np.vstack(out_s)

    def _learn(self, corpus: Corpus) -> None:
        positions = self._add_training(corpus)
        vectors = np.asarray(corpus.embeddings, dtype=np.float32)
        n, dim = len(self.ids), self.matrix.shape[1]
        buffer = getattr(self, "_buffer", None)
        if buffer is None or buffer.shape[0] < n or not np.shares_memory(buffer, self.matrix):
            # Room to grow: learning one artwork at a time must not copy the whole matrix each time.
            buffer = np.empty((n + max(256, n // 4), dim), dtype=np.float32)
            buffer[: self.matrix.shape[0]] = self.matrix
            self._buffer = buffer
        for r, j in enumerate(positions):
            if j >= 0:
                # a zero row is similar to nothing: a forgotten artwork never votes
                buffer[j] = vectors[r] if len(self.label_lists[j]) else 0.0
        self.matrix = buffer[:n]

    def _save(self, directory: Path) -> None:
        self._save_training(directory)
        np.save(directory / "embeddings.npy", self.matrix.astype(np.float16))

    def _load(self, directory: Path) -> None:
        self._load_training(directory)
        self.matrix = np.load(directory / "embeddings.npy").astype(np.float32)
