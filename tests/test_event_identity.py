"""Identity of what arttag publishes: one suggestion id names one content, and backfill's
event ids follow the same rule (artwork, revision, content)."""

from __future__ import annotations

from arttag.catalogue.text import content_hash
from arttag.catalogue.vocabulary import Tag
from arttag.events import (
    ArtworkCreated,
    ArtworkMetadata,
    ArtworkUpdated,
    Explanation,
    TagSuggestion,
    TagSuggestionsPublished,
    answer_digest,
    encode_event,
)
from arttag.model.fake_tagger import FakeTagger, TitleRule
from arttag_stream.backfill import backfill_event_id
from arttag_stream.processing import BatchProcessor, RawMessage, StateStore


def _messages(*events) -> list[RawMessage]:
    return [RawMessage(f"artworks.{e.event_type.split('.')[1]}.v1", 0, i, e.artwork_id.encode(),
                       encode_event(e)) for i, e in enumerate(events)]


def test_one_revision_with_two_contents_gives_two_ids():
    # The reported case: a created and an updated event for artwork 5, revision 1, with
    # different content. Each gets its own history record, and its own id, although the tagger
    # (the title's first word) suggests the same tag for both: the id names the content.
    first = ArtworkCreated(artwork_id="5", revision=1, artwork=ArtworkMetadata(title="Harbour"))
    second = ArtworkUpdated(artwork_id="5", revision=1, artwork=ArtworkMetadata(title="Harbour at dusk"))
    processor = BatchProcessor(FakeTagger(model_version="m1"), StateStore(), consumer="c")
    result = processor.process(_messages(first, second))
    records = [s for _, s in result.suggestions]
    assert len(records) == 2
    assert records[0].suggestions == records[1].suggestions
    assert len({r.suggestion_id for r in records}) == 2
    assert len({r.content_hash for r in records}) == 2
    for r in records:
        assert r.suggestion_id == TagSuggestionsPublished.make_id("5", 1, r.content_hash, "m1", r.suggestions)


def test_one_id_means_one_content_across_redeliveries():
    # At-least-once: the same event processed again (a restarted worker with an empty state)
    # gives the same id and the same suggestions, so dropping by id loses nothing.
    event = ArtworkCreated(artwork_id="T1", revision=3, artwork=ArtworkMetadata(title="Boat at sea"))
    runs = [BatchProcessor(FakeTagger(model_version="m1"), StateStore(), consumer="c").process(
        _messages(event)) for _ in range(2)]
    (_, a), (_, b) = runs[0].suggestions[0], runs[1].suggestions[0]
    assert a.suggestion_id == b.suggestion_id
    assert a.model_dump(exclude={"produced_at"}) == b.model_dump(exclude={"produced_at"})


def test_backfill_event_id_names_artwork_revision_and_content():
    harbour, dusk = ArtworkMetadata(title="Harbour"), ArtworkMetadata(title="Harbour at dusk")
    assert backfill_event_id("5", 1, harbour) == backfill_event_id("5", 1, ArtworkMetadata(title="Harbour"))
    assert len({backfill_event_id("5", 1, harbour), backfill_event_id("5", 1, dusk),
                backfill_event_id("5", 2, harbour), backfill_event_id("37", 1, harbour)}) == 4
    assert content_hash(harbour) != content_hash(dusk)


def test_the_content_hash_covers_every_field_a_suggestion_depends_on():
    # the accession scorer reads the accession number: another number is other content
    base = ArtworkMetadata(title="Sketchbook page", accession_number="D12345")
    assert content_hash(base) != content_hash(base.model_copy(update={"accession_number": "D12346"}))
    # fields no scorer reads do not change it
    assert content_hash(base) == content_hash(base.model_copy(update={"dimensions": "10 x 20 cm",
                                                                       "acquisition_year": 1856}))


def test_one_question_answered_twice_differently_gets_two_ids():
    # Online learning changes answers under one model version: here a curator's rejection of
    # "boat" takes effect between a first delivery and a redelivery of the same event. The two
    # records differ, so their ids must too; a consumer dropping by id keeps both.
    event = ArtworkCreated(artwork_id="T2", revision=1, artwork=ArtworkMetadata(title="Boat at sea"))
    rules = [TitleRule("Boat", Tag("boat", "boat", "transport"), 0.9), TitleRule("sea", Tag("sea", "sea", "nature"), 0.8)]
    before = BatchProcessor(FakeTagger(rules, model_version="m1"), StateStore(), consumer="c").process(
        _messages(event))
    after = BatchProcessor(FakeTagger(rules, model_version="m1"), StateStore(), consumer="c",
                           rejected=lambda artwork_id, artwork: {"boat"}).process(_messages(event))
    (_, a), (_, b) = before.suggestions[0], after.suggestions[0]
    assert [s.tag_id for s in a.suggestions] == ["boat", "sea"]
    assert [s.tag_id for s in b.suggestions] == ["sea"]
    assert (a.artwork_id, a.revision, a.content_hash, a.model_version) == \
        (b.artwork_id, b.revision, b.content_hash, b.model_version)
    assert a.suggestion_id != b.suggestion_id


def test_the_answer_digest_reads_tags_in_order_confidences_to_hundredths_and_auto_apply_marks():
    def answer(*tags, auto=False):
        return [TagSuggestion(tag_id=t, label=t, score=c, confidence=c, scorers=["t"], already_assigned=False,
                              auto_apply=auto, explanation=Explanation(summary=t, contributions=[]))
                for t, c in tags]
    base = answer(("sea", 0.81), ("boat", 0.4))
    assert answer_digest(base) == answer_digest(answer(("sea", 0.8100004), ("boat", 0.4)))  # float noise
    assert len({answer_digest(base), answer_digest(answer(("boat", 0.4), ("sea", 0.81))),
                answer_digest(answer(("sea", 0.83), ("boat", 0.4))), answer_digest(answer(("sea", 0.81))),
                answer_digest(answer(("sea", 0.81), ("boat", 0.4), auto=True))}) == 5
