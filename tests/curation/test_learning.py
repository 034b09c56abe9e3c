"""Online learning from decisions, without Kafka: a bundle trained on the synthetic catalogue
learns artworks with accepted tags as neighbours, and rejected tags stay away until the text changes."""

from __future__ import annotations

import numpy as np
import pytest
from arttag.catalogue.synthetic import write_synthetic_catalogue
from arttag.catalogue.text import build_text, content_hash, text_hash
from arttag.curation.fold import apply, decisions_of
from arttag.curation.learning import (
    DecisionsRecord,
    OnlineLearner,
    learned_tags,
    rejected_tags,
    suggested_content,
)
from arttag.curation.rules import CurationRules
from arttag.curation.state import CurationState
from arttag.encoders import HashingEncoder
from arttag.events import (
    ArtworkCreated,
    ArtworkMetadata,
    AssignedTag,
    TagDecisionsChanged,
    TagSuggestionsPublished,
    encode_event,
)
from arttag.kafka.artworks import decode_catalogue_record
from arttag.model.bundle import load_tagger
from arttag.model.tagger import SuggestOptions, TaggedArtwork
from arttag.model.training import train_bundle
from arttag.scorers.base import Batch

from .helpers import curator

LIGHTHOUSE = "99"  # in the vocabulary (from the thesaurus), carried by no training artwork (arttag.catalogue.synthetic)
SKETCHBOOK = {"artists": ["Anna Nobody"], "group_title": "Zennor Sketchbook", "medium": "Graphite on paper"}
PAGE = ArtworkMetadata(title="Keeper's Cottage below the Light, Zennor Head", accession_number="D90001", **SKETCHBOOK)
NEXT_PAGE = ArtworkMetadata(title="Keeper's Cottage below the Light, Zennor Head, Evening",
                            accession_number="D90002", **SKETCHBOOK)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("learning")
    catalogue = write_synthetic_catalogue(root / "cat.jsonl.gz")
    # The lighthouse is carried only by a dev artwork: the thesaurus is what puts it in the vocabulary.
    from arttag.catalogue.synthetic import UNSEEN_TAG
    from arttag.catalogue.vocabulary import Tag, Vocabulary

    Vocabulary([Tag(str(UNSEEN_TAG[0]), UNSEEN_TAG[1], UNSEEN_TAG[2])]).to_csv(root / "thesaurus.csv")
    train_bundle(catalogue, root / "bundle", HashingEncoder(), {"reranker": {"max_iter": 60}, "evaluate": False},
                 vocabulary=root / "thesaurus.csv")
    return root / "bundle"


@pytest.fixture
def tagger(bundle):
    return load_tagger(bundle, HashingEncoder())  # a fresh one per test: learning changes it


def decisions(artwork_id: str, *feedback) -> TagDecisionsChanged:
    """The decisions record ``arttag curate`` publishes after this curator feedback."""
    state = CurationState()
    for event in feedback:
        state, _ = apply(state, event, CurationRules())
    return decisions_of(state, artwork_id, CurationRules())


def suggestion_id(artwork_id: str, artwork: ArtworkMetadata) -> str:
    return TagSuggestionsPublished.make_id(artwork_id, 1, content_hash(artwork), "m1", [])


NEIGHBOUR_SCORERS = {"knn", "tfidf", "tfidf_artist", "group", "artist", "accession"}


def by_neighbours(suggestion) -> set[str]:
    """The neighbour scorers that proposed a suggested tag."""
    return set(suggestion.scorers) & NEIGHBOUR_SCORERS


def tag_of(suggestions, tag_id: str):
    return next((s for s in suggestions if s.tag_id == tag_id), None)


def test_a_learned_artwork_is_the_top_neighbour_of_its_near_duplicate_and_its_tag_rises(tagger):
    options = SuggestOptions(limit=50)
    [before] = tagger.suggest([NEXT_PAGE], options)
    unlearned = tag_of(before, LIGHTHOUSE)  # only the semantic scorer's faint guess
    assert not by_neighbours(unlearned) and unlearned.confidence < 0.1

    assert tagger.learn([TaggedArtwork("P1", PAGE, frozenset({LIGHTHOUSE}))]) == 1
    [after] = tagger.suggest([NEXT_PAGE], options)
    lighthouse = tag_of(after, LIGHTHOUSE)
    assert after.index(lighthouse) < 3 and lighthouse.confidence > unlearned.confidence + 0.2
    cited = {c.scorer: c.evidence for c in lighthouse.explanation.contributions}
    # every neighbour scorer cites the learned page, by title, as a curation decision
    assert by_neighbours(lighthouse) == NEIGHBOUR_SCORERS
    for scorer in sorted(NEIGHBOUR_SCORERS):
        [neighbour] = [e for e in cited[scorer] if e.kind == "neighbour"]
        assert (neighbour.artwork_id, neighbour.title, neighbour.from_decision) == ("P1", PAGE.title, True)
    assert "tagged by a curation decision" in lighthouse.explanation.summary
    # it is the nearest neighbour by embedding of the next page, above every trained artwork
    _batch, cands, _ = tagger.rank([NEXT_PAGE])
    knn = tagger.ensemble.scorer("knn")
    best = int(cands[0].state[0][0][0])
    assert knn.ids[best] == "P1"
    # trained neighbours are not marked
    assert "from_decision" not in "".join(s.model_dump_json() for s in before)
    assert '"from_decision":true' in lighthouse.model_dump_json()


def test_learning_again_replaces_and_no_tags_forgets(tagger):
    options = SuggestOptions(limit=50)
    tagger.learn([TaggedArtwork("P1", PAGE, frozenset({LIGHTHOUSE}))])
    size = len(tagger.ensemble.scorer("knn").ids)
    tagger.learn([TaggedArtwork("P1", PAGE, frozenset({"7"}))])  # the curator changed their mind: cathedral
    assert len(tagger.ensemble.scorer("knn").ids) == size  # replaced, not added
    tfidf = tagger.ensemble.scorer("tfidf")
    j = tfidf.ids.index("P1")
    dense = tfidf.matrix.toarray()
    assert np.allclose(dense, tfidf.matrix_t.toarray().T)  # both views were updated alike
    assert np.allclose(dense[j], tfidf.vectorizer.transform([Batch.from_metadata([PAGE]).fields[0]]).toarray()[0])
    [page] = tagger.suggest([NEXT_PAGE], options)
    assert not by_neighbours(tag_of(page, LIGHTHOUSE))
    cathedral = tag_of(page, "7")
    group = next(c for c in cathedral.explanation.contributions if c.scorer == "group")
    assert [e.artwork_id for e in group.evidence] == ["P1"]

    tagger.learn([TaggedArtwork("P1", PAGE, frozenset())])
    [page] = tagger.suggest([NEXT_PAGE], options)
    assert all(e.artwork_id != "P1" for s in page for c in s.explanation.contributions for e in c.evidence
               if e.kind == "neighbour")
    assert tagger.learned == set()


def test_the_rejection_rule_follows_the_text():
    record = decisions("A1", curator("A1", "5", "accepted", 1),
                       curator("A1", "6", "rejected", 2, suggestion_id=suggestion_id("A1", PAGE)),
                       curator("A1", "8", "rejected", 3))  # no suggestion named: holds for any text
    assert suggested_content("A1", suggestion_id("A1", PAGE)) == content_hash(PAGE)[:16]
    assert suggested_content("A:1", "A:1:3:" + "a" * 16 + ":tate:v2") == "a" * 16
    assert suggested_content("A1", "garbage") is None
    assert rejected_tags(record, PAGE) == {"6", "8"}
    edited = PAGE.model_copy(update={"title": "Keeper's Cottage, Zennor"})
    assert rejected_tags(record, edited) == {"8"}
    # catalogued tags added, the text unchanged: the rejection holds when the judged text is known
    with_tags = PAGE.model_copy(update={"tags": [AssignedTag(id="1"), AssignedTag(id="6")]})
    texts = {content_hash(PAGE)[:16]: text_hash(build_text(PAGE))}
    assert rejected_tags(record, with_tags, texts.get) == {"6", "8"}
    assert rejected_tags(record, with_tags) == {"8"}  # unknown: counted as other text
    assert learned_tags(with_tags, record) == {"1", "5"}  # catalogued + accepted - rejected
    assert learned_tags(with_tags, decisions("A1", curator("A1", "6", "rejected", 1))) == frozenset()


def catalogue_record(artwork_id: str, artwork: ArtworkMetadata, revision: int = 1):
    return decode_catalogue_record(encode_event(ArtworkCreated(artwork_id=artwork_id, revision=revision,
                                                               artwork=artwork)))[1]


def test_a_tagger_following_the_learner_learns_at_its_next_batch(tagger):
    learner = OnlineLearner()
    learner.attach(tagger)
    options = SuggestOptions(limit=50)
    learner.decisions.merge("P1", DecisionsRecord(decisions("P1", curator("P1", LIGHTHOUSE, "accepted", 1))))
    assert len(learner) == 0  # no metadata yet: nothing to learn
    learner.catalogue.merge("P1", catalogue_record("P1", PAGE))
    assert len(learner) == 1 and tagger.learned == set()  # learned at the next batch, not now
    [page] = tagger.suggest([NEXT_PAGE], options)
    assert tagger.learned == {"P1"} and "knn" in tag_of(page, LIGHTHOUSE).scorers

    # a new tagger (a bundle swap) learns everything the learner holds when it is attached
    fresh = load_tagger(tagger.directory, HashingEncoder())
    learner.attach(fresh)
    assert fresh.learned == {"P1"}

    # the curator withdraws the acceptance: forgotten by both
    learner.decisions.merge("P1", DecisionsRecord(decisions(
        "P1", curator("P1", LIGHTHOUSE, "accepted", 1), curator("P1", LIGHTHOUSE, "rejected", 2))))
    assert len(learner) == 0
    [page] = tagger.suggest([NEXT_PAGE], options)
    fresh.suggest([NEXT_PAGE], options)
    assert tagger.learned == fresh.learned == set()
    assert not by_neighbours(tag_of(page, LIGHTHOUSE))
    assert learner.rejected_tags("P1", PAGE) == {LIGHTHOUSE}


def test_the_worker_leaves_a_rejected_tag_out_until_the_text_changes(tagger):
    from arttag_stream.processing import BatchProcessor, RawMessage, StateStore

    learner = OnlineLearner()
    learner.attach(tagger)
    processor = BatchProcessor(tagger, StateStore(), consumer="test", options=SuggestOptions(limit=5),
                               rejected=learner.rejected_tags)
    offset = iter(range(100))

    def suggest(revision: int, artwork: ArtworkMetadata) -> TagSuggestionsPublished:
        event = ArtworkCreated(artwork_id="H1", revision=revision, artwork=artwork)
        learner.catalogue.merge("H1", catalogue_record("H1", artwork, revision))  # what the follower reads
        result = processor.process([RawMessage("artworks.created.v1", 0, next(offset), b"H1", encode_event(event))])
        [(_, published)] = result.suggestions
        return published

    harbour = ArtworkMetadata(title="Fishing Boats in Dover Harbour", artists=["Joseph Mallord William Turner"],
                              medium="Oil paint on canvas")
    first = suggest(1, harbour)
    top = first.suggestions[0].tag_id
    learner.decisions.merge("H1", DecisionsRecord(decisions(
        "H1", curator("H1", top, "rejected", 1, suggestion_id=first.suggestion_id))))

    # the catalogue adds a tag: other content, same text: the rejected tag stays out, five still come
    tagged = harbour.model_copy(update={"tags": [AssignedTag(id="2")]})
    second = suggest(2, tagged)
    assert top not in [s.tag_id for s in second.suggestions] and len(second.suggestions) == 5
    # the text changes: the tag may come back, and does
    retitled = tagged.model_copy(update={"title": "Fishing Boats in Dover Harbour at Dusk"})
    third = suggest(3, retitled)
    assert third.suggestions[0].tag_id == top


def test_a_hot_reloaded_bundle_learns_before_it_serves(bundle, tagger):
    from arttag.model.bundle import copy_version
    from arttag.model.bundle_watch import BundleWatcher, bundle_loader

    learner = OnlineLearner()
    learner.attach(tagger)
    learner.decisions.merge("P1", DecisionsRecord(decisions("P1", curator("P1", LIGHTHOUSE, "accepted", 1))))
    learner.catalogue.merge("P1", catalogue_record("P1", PAGE))
    watcher = BundleWatcher(bundle, learner.loader(bundle_loader(None, "hashing")), tagger, interval_s=0)
    copy_version(bundle, "relabelled")
    assert watcher.check()
    new = watcher.tagger
    assert new is not tagger and new.model_version == "relabelled"
    assert new.learned == {"P1"}  # in the loading thread, before its first batch
