"""The re-ranker's features built for a whole batch at once (:meth:`Ensemble.features`) are the
ones built artwork by artwork from each scorer's :meth:`score_tags` and :meth:`tag_features`,
bit for bit, on a bundle trained on the sample catalogue."""

from __future__ import annotations

import numpy as np
import pytest
from arttag.catalogue.records import iter_catalogue
from arttag.encoders import HashingEncoder
from arttag.model.bundle import load_tagger
from arttag.model.ensemble import Ensemble
from arttag.scorers.base import Batch, Pairs, top_k
from arttag.scorers.knn import KnnVoting


def _ranks(proposed: np.ndarray, tags: np.ndarray) -> np.ndarray:
    position = {int(t): i + 1 for i, t in reversed(list(enumerate(proposed.tolist())))}
    return np.array([position.get(int(t), 0) for t in tags], dtype=np.float64)


def straightforward(ens: Ensemble, batch: Batch, cands, row: int) -> tuple[np.ndarray, np.ndarray]:
    """One artwork's features, scorer by scorer, from the per-artwork methods."""
    tags = np.array(sorted({int(t) for c in cands for t in c.tags[row]}), dtype=np.int64)
    n = len(tags)
    cols, supervised, proposed = [], np.zeros(n), np.zeros(n)
    for s, c in zip(ens.scorers, cands):
        scores = s.score_tags(batch, c, row, tags)
        ranks = _ranks(np.asarray(c.tags[row]), tags)
        top = float(c.scores[row][0]) if len(c.scores[row]) else 0.0
        cols += [scores, np.where(ranks > 0, ranks, s.params.limit + 1),
                 scores / top if top > 0 else np.zeros(n), (ranks > 0).astype(float)]
        extra = s.tag_features(c, row, tags) if s.extra_features else {}
        cols += [extra.get(f, np.zeros(n)) for f in s.extra_features]
        cols += [np.full(n, c.doc_features[f][row]) for f in s.doc_feature_names]
        proposed += ranks > 0
        if s.supervised:
            supervised += scores
    groups = ens._group[tags]
    same = groups[:, None] == groups[None, :]
    group_sum = np.array([supervised[same[i]].sum() for i in range(n)]) - supervised
    group_cnt = np.array([(supervised[same[i]] > 0).sum() for i in range(n)]) - (supervised > 0)
    cols += [proposed, ens._log_usage[tags], (ens._log_usage[tags] == 0).astype(float), group_sum, group_cnt,
             supervised, ens._group_code[tags], ens._area_code[tags]]
    return tags, np.column_stack(cols)


@pytest.fixture(scope="module")
def ensemble(hashing_bundle_dir) -> Ensemble:
    ens = load_tagger(hashing_bundle_dir, HashingEncoder()).ensemble
    assert isinstance(ens, Ensemble)
    return ens


@pytest.fixture(scope="module")
def batch(sample_catalogue, ensemble) -> Batch:
    metas = [r.metadata for r in iter_catalogue(sample_catalogue)][:40]
    b = Batch.from_metadata(metas)
    b.embeddings = HashingEncoder().encode(b.texts)
    return b


def test_batch_features_equal_the_artwork_by_artwork_construction(ensemble, batch):
    cands = ensemble.gather(batch)
    feats = ensemble.features(batch, cands)
    assert feats.matrix.shape == (len(feats.pairs), len(ensemble.feature_names))
    assert any(len(c.tags[r]) == 0 for c in cands for r in range(len(batch)))  # a scorer without candidates
    for row in range(len(batch)):
        tags, matrix = straightforward(ensemble, batch, cands, row)
        mine = feats.row(row)
        assert np.array_equal(mine.tags, tags)
        # the group sums add in another order here: equal to rounding
        assert np.allclose(mine.matrix, matrix, rtol=0, atol=1e-12)
        exact = [i for i, f in enumerate(ensemble.feature_names) if f not in ("group_support",)]
        assert np.array_equal(mine.matrix[:, exact], matrix[:, exact])
        for s, c in zip(ensemble.scorers, cands):
            assert np.array_equal(mine.source_scores[s.name], s.score_tags(batch, c, row, tags))
            assert np.array_equal(mine.source_ranks[s.name], _ranks(np.asarray(c.tags[row]), tags))


def test_serving_ranks_the_batch_features(ensemble, batch):
    cands = ensemble.gather(batch)
    ranked, _ = ensemble.rank(batch, cands)
    feats = ensemble.features(batch, cands)
    probs = ensemble._merge(feats.matrix)
    for row, r in enumerate(ranked):
        span = feats.pairs.row(row)
        assert sorted(r.tags.tolist()) == feats.pairs.tags[span].tolist()
        assert np.array_equal(np.sort(r.probs), np.sort(probs[span]))


def test_neighbour_candidates_are_each_artworks_top_votes(ensemble, batch):
    for scorer in ensemble.scorers:
        if not isinstance(scorer, KnnVoting):
            continue
        cands = scorer.score(batch)
        for row in range(len(batch)):
            voted, wsum = cands.state[row][4], cands.state[row][5]
            assert np.array_equal(cands.tags[row], voted[top_k(wsum, scorer.params.limit)])


def test_pairs_mark_gold_tags_and_rank_proposals():
    pairs = Pairs.from_keys(np.array([3, 5, 10 + 1, 10 + 7], dtype=np.int64), n_rows=3, n_tags=10)
    assert pairs.rows.tolist() == [0, 0, 1, 1]
    assert pairs.tags.tolist() == [3, 5, 1, 7]
    assert pairs.marks([{5}, {7, 9}, set()]).tolist() == [False, True, False, True]
    assert pairs.ranks([np.array([5, 3]), np.array([7]), np.array([], dtype=np.int64)]).tolist() == [2, 1, 0, 1]
    assert pairs.row(2) == slice(4, 4)


def test_a_batch_where_a_scorer_has_no_votes_at_all(ensemble, batch):
    from arttag.events import ArtworkMetadata

    one = Batch.from_metadata([ArtworkMetadata(title="Harbour at dusk")])  # no accession number, group or byline
    one.embeddings = HashingEncoder().encode(one.texts)
    cands = ensemble.gather(one)
    assert not len(ensemble.scorer("accession").score(one).tags[0])
    tags, matrix = straightforward(ensemble, one, cands, 0)
    feats = ensemble.features(one, cands)
    assert np.array_equal(feats.row(0).tags, tags)
    assert np.allclose(feats.row(0).matrix, matrix, rtol=0, atol=1e-12)
