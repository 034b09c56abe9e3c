"""The measurements of bench/quality_ceiling.py on data small enough to check by hand."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from .support import load_bench_module

ceiling = load_bench_module("quality_ceiling")


def test_candidate_shares_count_every_true_pair_and_what_only_one_scorer_proposes():
    gold = [{1, 2, -1}, {3}]  # -1: a tag outside the vocabulary, which no candidate can hold
    per_scorer = {"a": [{1, 5}, {3}], "b": [{1, 2}, set()]}
    shares, union = ceiling.candidate_shares(per_scorer, gold)
    assert union == [{1, 2, 5}, {3}]
    assert shares["union_true_share"] == 3 / 4
    assert shares["union_mean_candidates"] == 2.0
    assert shares["scorers"]["a"] == {"true_share": 2 / 4, "true_share_only_it": 1 / 4}
    assert shares["scorers"]["b"] == {"true_share": 2 / 4, "true_share_only_it": 1 / 4}


def test_a_source_is_ranked_alone_and_by_what_it_adds_to_the_candidates(monkeypatch):
    monkeypatch.setattr(ceiling, "SOURCE_LIMIT", 2)
    scores = np.array([[0.9, 0.1, 0.8, 0.0], [0.0, 0.2, 0.1, 0.7]])
    np.testing.assert_array_equal(ceiling.top_rows(scores, 2), [[0, 2], [3, 1]])
    report = ceiling.source_report(scores, [{0, 1}, {3}], union=[{0}, set()])
    assert report["true_share"] == 2 / 3  # tag 0 of the first artwork, tag 3 of the second
    assert report["true_share_added"] == 1 / 3  # tag 0 was a candidate already
    assert report["f1_at_5"] > 0


def test_title_neighbours_vote_with_their_similarity_to_the_sixth_power(monkeypatch):
    monkeypatch.setattr(ceiling, "TITLE_NEIGHBOURS", 2)
    index = np.array([[1.0, 0.0], [0.0, 1.0], [np.sqrt(0.5), np.sqrt(0.5)]], dtype=np.float32)
    labels = sp.csr_matrix(np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32))
    votes = ceiling.title_neighbour_votes(np.array([[1.0, 0.0]], dtype=np.float32), index, labels)
    # the two nearest titles vote: itself (similarity 1) and the mixed one (similarity sqrt(0.5))
    w_self, w_mixed = 1.0, np.sqrt(0.5) ** 6
    np.testing.assert_allclose(votes[0], [1.0, w_mixed / (w_self + w_mixed)], rtol=1e-5)


def test_the_label_space_projection_ranks_the_tag_whose_text_the_artwork_resembles():
    rng = np.random.default_rng(0)
    tag_emb = np.eye(3, dtype=np.float32)
    labels = sp.csr_matrix(np.repeat(np.eye(3, dtype=np.float32), 20, axis=0))
    # artworks of tag k lie near a direction of their own, not the tag text itself
    directions = rng.normal(size=(3, 8)).astype(np.float32)
    train = np.repeat(directions, 20, axis=0) + 0.05 * rng.normal(size=(60, 8)).astype(np.float32)
    scores = ceiling.label_space_projection(train, labels, tag_emb, directions)
    assert scores.argmax(axis=1).tolist() == [0, 1, 2]


def test_the_halves_by_first_artist_are_stable_and_keep_an_artist_together():
    class Meta:
        def __init__(self, artists):
            self.artists = artists

    assert ceiling.first_artist_half(Meta(["Joseph Beuys"])) == ceiling.first_artist_half(Meta(["Joseph Beuys", "X"]))
    assert {ceiling.first_artist_half(Meta([f"Artist {i}"])) for i in range(20)} == {0, 1}
    assert ceiling.first_artist_half(Meta([])) in (0, 1)
