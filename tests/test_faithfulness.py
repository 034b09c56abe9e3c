"""Explanations measured: comprehensiveness and sufficiency of the cited evidence."""

from __future__ import annotations

import numpy as np
import pytest
from arttag.events import Explanation, NeighbourEvidence, ScorerContribution, TagSuggestion, TermEvidence
from arttag.quality.faithfulness import (
    cited_evidence,
    histogram,
    keep_words,
    measure,
    restricted_neighbours,
    strip_words,
)


def test_cited_evidence_collects_neighbours_per_scorer_and_words_per_field():
    s = TagSuggestion(tag_id="1", label="sea", score=0.9, confidence=0.9, scorers=["knn"], already_assigned=False,
                      explanation=Explanation(summary="s", contributions=[
                          ScorerContribution(scorer="knn", score=0.5, evidence=[
                              NeighbourEvidence(artwork_id="A1", title="t", similarity=0.8)]),
                          ScorerContribution(scorer="mention", score=0.4, evidence=[
                              TermEvidence(field="title", term="Sailing Boat", weight=0.9),
                              TermEvidence(field="other", term="harbour", weight=0.5)]),
                          ScorerContribution(scorer="linear", score=0.3, evidence=[
                              TermEvidence(field="text embedding", term="(whole text)", weight=0.2)]),
                      ]))
    cited = cited_evidence(s)
    assert cited.neighbours == {"knn": [("A1", 0.8)]}
    assert cited.words == {"title": {"sailing", "boat"}, "description": {"harbour"}, "inscription": {"harbour"}}
    assert not cited.empty


def test_strip_and_keep_words_are_whole_word_and_per_field():
    fields = {"title": "Sailing Boat off Boatham", "medium": "boat paint", "description": "harbour"}
    words = {"title": {"boat"}, "description": {"harbour"}}
    assert strip_words(fields, words) == {"title": "Sailing off Boatham", "medium": "boat paint"}
    assert keep_words(fields, words) == {"title": "Boat", "description": "harbour"}


def test_histogram_clips_into_the_end_bins():
    h = histogram([-5.0, 0.05, 0.95, 7.0], [0.0, 0.5, 1.0])
    assert h["counts"] == [2, 2]


@pytest.fixture(scope="module")
def tagger(hashing_bundle_dir):
    from arttag.encoders import HashingEncoder
    from arttag.model.bundle import load_tagger

    return load_tagger(hashing_bundle_dir, HashingEncoder())


def _dev_metas(sample_catalogue, n):
    from arttag.catalogue.records import load_catalogue
    from arttag.model.training import split_records

    records, _ = load_catalogue(sample_catalogue)
    return [r.metadata.model_copy(update={"tags": []}) for r in split_records(records)["dev"][:n]]


def test_restricted_neighbours_drops_or_pins_neighbours_for_one_call(tagger, sample_catalogue):
    from arttag.scorers.base import Batch

    knn = tagger.ensemble.scorer("knn")
    metas = _dev_metas(sample_catalogue, 2)
    batch = Batch.from_metadata(metas, np.asarray(tagger.encoder.encode([Batch.from_metadata(metas).texts][0])))
    idx, sims = knn._neighbours(batch)
    first = int(idx[0][0])
    with restricted_neighbours(tagger.ensemble, {"knn": [("without", {first}), ("only", [(7, 0.5)])]}):
        got_idx, got_sims = knn._neighbours(batch)
    assert first not in got_idx[0].tolist() and (got_sims[0] > 0).sum() == (sims[0] > 0).sum()
    assert got_idx[0].tolist()[:3] == [int(i) for i in idx[0][1:4]]
    assert got_idx[1][0] == 7 and got_sims[1][0] == pytest.approx(0.5) and (got_sims[1] > 0).sum() == 1
    # back to normal after the block
    again, _ = knn._neighbours(batch)
    assert again.tolist() == idx.tolist()


def test_removing_the_cited_evidence_lowers_the_probability(tagger, sample_catalogue):
    result = measure(tagger, _dev_metas(sample_catalogue, 40), top=5, batch_size=16)
    assert result["artworks"] == 40 and 0 < result["suggestions"] <= 200
    assert sum(result["comprehensiveness"]["histogram"]["counts"]) == result["suggestions"]
    assert sum(result["sufficiency"]["histogram"]["counts"]) == result["suggestions"]
    # the explanation is the reason: without it the suggestion loses most of its probability
    assert result["comprehensiveness"]["mean"] > 0.2
    assert result["mean_confidence_without"] < result["mean_confidence"]
    assert result["sufficiency"]["mean"] > 0.0
