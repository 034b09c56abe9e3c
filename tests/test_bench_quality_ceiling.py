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
    rankings = [np.array([0, 2, 1]), np.array([3, 1])]  # the third tag of the first is past the limit
    report = ceiling.source_report(rankings, [{0, 1}, {3}], union=[{0}, set()])
    assert report["true_share"] == 2 / 3  # tag 0 of the first artwork, tag 3 of the second
    assert report["true_share_added"] == 1 / 3  # tag 0 was a candidate already
    assert report["f1_at_5"] > 0


def test_the_title_sources_are_the_ensembles_own_scorers_on_titles():
    from arttag.catalogue.records import CatalogueRecord
    from arttag.catalogue.vocabulary import Vocabulary
    from arttag.events import ArtworkMetadata, AssignedTag

    def rec(i, title, tags):
        meta = ArtworkMetadata(title=title, tags=[AssignedTag(id=t, label=t) for t in tags])
        return CatalogueRecord(line=i, artwork_id=str(i), metadata=meta)

    training = [rec(1, "Dog", ["dog"]), rec(2, "Dog walking", ["dog", "park"]), rec(3, "Harbour", ["sea"])]
    vocab = Vocabulary.from_records(training)
    axis = {"dog": 0, "park": 1, "sea": 2}  # each tag text's embedding, in vocabulary order
    tag_emb = np.stack([np.eye(3, dtype=np.float32)[axis[t.label]] for t in vocab.tags])
    # title vectors: dog titles along the first axis, the harbour along the third
    train_titles = np.array([[1, 0, 0], [0.8, 0.6, 0], [0, 0, 1]], dtype=np.float32)
    held = [rec(9, "A dog", []), rec(10, "The sea", [])]
    held_titles = np.array([[1, 0, 0], [0, 0, 1]], dtype=np.float32)
    found = ceiling.title_sources(training, held, vocab, tag_emb, train_titles, held_titles)
    labels = {name: [[vocab.tags[int(t)].label for t in row] for row in rows] for name, rows in found.items()}
    # the nearest titles vote: both dog titles for the dog (park only from the second, weaker one)
    assert labels["title_neighbours"] == [["dog", "park"], ["sea"]]
    # cosine to each tag text: the first axis is the text of "dog", the third of "sea"
    assert labels["title_tag_text_cosine"][0][0] == "dog" and labels["title_tag_text_cosine"][1][0] == "sea"


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
