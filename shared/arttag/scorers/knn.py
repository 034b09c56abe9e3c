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
from arttag.scorers.search import SearchingScorer, SearchMode
from arttag.scorers.topk import top_k_with_values
from arttag.scorers.base import (
    Batch,
    Candidates,
    Corpus,
    Pairs,
    Scorer,
    ScorerParams,
    group_by_row,
    top_k,
)


class Votes(list):
    """The votes of a batch's neighbours, flat for the whole batch and, as a list, per artwork:
    ``(indices, similarities, total, (positions, inverse), tags, weight sums, votes, max
    similarities, top-5 shares)``, views of the flat arrays (what explanations read)."""

    def __init__(self, keys: np.ndarray, key_bounds: np.ndarray, totals: np.ndarray, wsum: np.ndarray,
                 votes: np.ndarray, max_sim: np.ndarray, near: np.ndarray, idx: np.ndarray, sims: np.ndarray,
                 starts: np.ndarray, positions: np.ndarray, inverse: np.ndarray, label_bounds: np.ndarray,
                 n_tags: int) -> None:
        self.keys, self.totals, self.wsum, self.votes, self.max_sim, self.near = keys, totals, wsum, votes, max_sim, near
        self.key_bounds = key_bounds
        rows = []
        for r, total in enumerate(totals.tolist()):
            n = slice(int(starts[r]), int(starts[r + 1]))
            k = slice(int(key_bounds[r]), int(key_bounds[r + 1]))
            lab = slice(int(label_bounds[r]), int(label_bounds[r + 1]))
            rows.append((idx[n], sims[n], total, (positions[lab], inverse[lab] - key_bounds[r]), keys[k] % n_tags,
                         wsum[k], votes[k], max_sim[k], near[k]))
        super().__init__(rows)

    def top(self, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """Per artwork, the positions (in :attr:`keys`) of its ``limit`` tags of largest weight sum,
        largest first, ties by tag index (:func:`top_k` of each artwork's sums); and each artwork's bounds."""
        n_rows = len(self.key_bounds) - 1
        row = np.repeat(np.arange(n_rows), np.diff(self.key_bounds))
        order = np.lexsort((-self.wsum, row))  # stable: ties stay in tag order
        parts = []
        for r in range(n_rows):
            a, b = int(self.key_bounds[r]), int(self.key_bounds[r + 1])
            if b - a > limit and self.wsum[order[a + limit - 1]] == self.wsum[order[a + limit]]:
                # a tie across the cut: top_k's own choice among the tied
                parts.append(a + top_k(self.wsum[a:b], limit))
            else:
                parts.append(order[a:min(b, a + limit)])
        chosen = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        lengths = np.fromiter((len(x) for x in parts), dtype=np.int64, count=len(parts))
        return chosen, np.concatenate([[0], np.cumsum(lengths)])


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
        """Each row's ``k`` most similar (indices, similarities), most similar first, ties by index."""
        idx, best = top_k_with_values(sims, k)
        return idx, best.astype(sims.dtype, copy=False)

    def _score(self, batch: Batch, limit: int) -> Candidates:
        nb_idx, nb_sim = self._neighbours(batch)
        votes = self._vote(nb_idx, nb_sim)
        n_rows, n_tags = len(batch), len(self.vocabulary)
        chosen, bounds = votes.top(limit)
        scores = np.minimum(votes.wsum[chosen] / votes.totals[votes.keys[chosen] // n_tags], 1.0)
        tags = votes.keys[chosen] % n_tags
        named = {"votes": votes.votes, "max_sim": votes.max_sim, "weight_sum": votes.wsum, "top5_share": votes.near}
        picked = {k: v[chosen] for k, v in named.items()}
        spans = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
        width = nb_sim.shape[1]
        # per artwork, as numpy reduces one row (a 2-D reduction may add in another order)
        top1 = np.array([float(nb_sim[r][0]) if width else 0.0 for r in range(n_rows)])
        mean = np.array([float(nb_sim[r].mean()) if width else 0.0 for r in range(n_rows)])
        return Candidates(self.name, [tags[x] for x in spans], [scores[x] for x in spans],
                          [{k: v[x] for k, v in picked.items()} for x in spans],
                          {"top1_sim": top1, "mean_sim": mean}, state=votes)

    def _vote(self, nb_idx: np.ndarray, nb_sim: np.ndarray) -> Votes:
        """Every neighbour's vote for each of its tags, summed per (artwork, tag), for the whole batch."""
        p = self.params
        n_rows, n_tags = nb_idx.shape[0], len(self.vocabulary)
        keep = nb_sim >= max(p.min_similarity, 1e-9)
        counts = keep.sum(axis=1).astype(np.int64)
        starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        kept_row = np.repeat(np.arange(n_rows, dtype=np.int64), counts)
        idx, sims = nb_idx[keep].astype(np.int64), nb_sim[keep]
        weights = np.power(sims.astype(np.float64), p.power)
        # per artwork, each sum over that artwork's weights alone (numpy's summation order
        # depends on the length summed)
        totals = np.array([float(weights[a:b].sum()) or 1.0 for a, b in zip(starts[:-1], starts[1:])])
        near_totals = np.array([float(weights[a:min(a + 5, b)].sum()) or 1.0
                                for a, b in zip(starts[:-1].tolist(), starts[1:].tolist())])
        lists = [self.label_lists[j] for j in idx.tolist()]
        lengths = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
        flat = np.concatenate(lists).astype(np.int64) if lists else np.zeros(0, dtype=np.int64)
        voter = np.repeat(np.arange(len(idx), dtype=np.int64), lengths)
        # a voter's position among its own artwork's neighbours
        positions = voter - starts[kept_row[voter]] if len(voter) else np.zeros(0, dtype=np.int64)
        keys, first, inverse = np.unique(kept_row[voter] * n_tags + flat, return_index=True, return_inverse=True)
        inverse = inverse.ravel()
        wsum = np.bincount(inverse, weights=weights[voter], minlength=len(keys))
        votes = np.bincount(inverse, minlength=len(keys)).astype(np.float64)
        max_sim = sims[voter[first]].astype(np.float64)  # neighbours are sorted: the first voter is the closest
        # The vote among the closest five only: a sharper view of the same neighbourhood.
        near = positions < 5
        key_row = keys // n_tags
        near_sum = np.bincount(inverse[near], weights=weights[voter[near]], minlength=len(keys)) / near_totals[key_row]
        key_bounds = np.searchsorted(keys, np.arange(n_rows + 1, dtype=np.int64) * n_tags)
        label_bounds = np.searchsorted(kept_row[voter], np.arange(n_rows + 1, dtype=np.int64))
        return Votes(keys, key_bounds, totals, wsum, votes, max_sim, near_sum, idx, sims, starts,
                     positions, inverse, label_bounds, n_tags)

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

    def _score_pairs(self, batch: Batch, cands: Candidates, pairs: Pairs) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        v: Votes = cands.state
        if not len(v.keys):  # nobody voted in the whole batch
            return np.zeros(len(pairs)), {name: np.zeros(len(pairs)) for name in self.extra_features}
        pos = pairs.lookup(v.keys)
        hit = pos >= 0
        scores = np.where(hit, np.minimum(v.wsum[pos] / v.totals[pairs.rows], 1.0), 0.0)
        return scores, {"votes": np.where(hit, v.votes[pos], 0.0), "max_sim": np.where(hit, v.max_sim[pos], 0.0),
                        "weight_sum": np.where(hit, v.wsum[pos], 0.0), "top5_share": np.where(hit, v.near[pos], 0.0)}

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


class EmbeddingKnnParams(KnnParams):
    search: SearchMode = Field("auto", description="Neighbour search (arttag.scorers.search): exact, int8-first, "
                               "or auto (int8 from 8,192 training artworks on)")


class EmbeddingKnnScorer(SearchingScorer, KnnVoting):
    """kNN over sentence embeddings (cosine similarity of L2-normalised vectors)."""

    Params = EmbeddingKnnParams
    params: EmbeddingKnnParams
    name = "knn"
    cited_artworks = "similar tagged artwork(s) by embedding"
    needs_embeddings = True

    def _fit(self, corpus: Corpus) -> None:
        self._set_training(corpus)
        self.matrix = np.ascontiguousarray(corpus.embeddings, dtype=np.float32)

    def _neighbours(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        q = np.asarray(batch.embeddings, dtype=np.float32)
        out_i, out_s = [], []
        search = self.searcher()
        for start in range(0, len(q), self.params.chunk_size):
            i, s = search.search(q[start:start + self.params.chunk_size], self.params.neighbours)
            out_i.append(i)
            out_s.append(s)
        return np.vstack(out_i), np.vstack(out_s)

    def searched_matrix(self) -> np.ndarray:
        """The training embeddings (:class:`arttag.scorers.search.SearchingScorer`)."""
        return self.matrix

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
        search = getattr(self, "_search", None)
        if search is not None:
            search.changed(self.matrix, positions[positions >= 0])

    def _save(self, directory: Path) -> None:
        self._save_training(directory)
        np.save(directory / "embeddings.npy", self.matrix.astype(np.float16))

    def _load(self, directory: Path) -> None:
        self._load_training(directory)
        self.matrix = np.load(directory / "embeddings.npy").astype(np.float32)
