"""Records the broker refuses as too large count as attempts of their messages (without Kafka).

A topic whose max.message.bytes is below ARTTAG_MAX_RECORD_BYTES refuses the same record on
every try; the worker exits without committing, and the restarted worker must not meet the
same refusal forever. Each test runs worker 'lives' against one journal directory, as
restarts would.
"""

from __future__ import annotations

import os
from pathlib import Path

from arttag.events import ArtworkCreated, ArtworkMetadata, encode_event
from arttag.kafka.sink import InMemorySuggestionSink, OutRecord, PublishFailed, RecordsRefused
from arttag.model.fake_tagger import FakeTagger
from arttag_stream.attempts import AttemptJournal, CrashGuard
from arttag_stream.pipeline import prepare_batch, tag_and_publish
from arttag_stream.processing import BatchProcessor, RawMessage, StateStore

TOPIC = "artworks.created.v1"


class SmallTopicsSink(InMemorySuggestionSink):
    """A broker whose topics take records of at most ``limit`` bytes: it writes the others of a
    wave and refuses those, as Kafka does per record batch."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def _write(self, records):
        refused = [r for r in records if len(r.key or b"") + len(r.value) > self.limit]
        super()._write([r for r in records if r not in refused])
        if refused:
            raise RecordsRefused(f"{len(refused)} records too large", refused)


def created(artwork_id: str, title: str) -> bytes:
    return encode_event(ArtworkCreated(artwork_id=artwork_id, revision=1, artwork=ArtworkMetadata(title=title)))


def lives_until_published(data_dir: Path, messages: list[RawMessage], sink: InMemorySuggestionSink,
                          max_attempts: int = 3) -> int:
    """Worker lives (a fresh guard and state each, one journal) until a life publishes its batch."""
    for life in range(1, 12):
        guard = CrashGuard(AttemptJournal(data_dir), max_attempts,
                           BatchProcessor(FakeTagger(), StateStore(), consumer="c"))
        try:
            tag_and_publish(guard, messages, sink)
            return life
        except PublishFailed:
            continue  # the worker exits; its restart replays the uncommitted batch
    raise AssertionError("never published")


def published(sink: InMemorySuggestionSink, topic: str) -> list[OutRecord]:
    return [r for r in sink.records if r.topic == topic]


def test_a_suggestion_refused_as_too_large_is_dead_lettered_after_max_attempts(tmp_path):
    # The fake tagger's tag is the title's first word: a 1,900-character word makes one suggestion
    # of about 8 KB where the others are under 1 KB.
    titles = ["Harbour at dusk", "W" * 1900 + " at dawn", "Boats", "Storm"]
    messages = [RawMessage(TOPIC, 0, 40 + i, f"A{i}".encode(), created(f"A{i}", t)) for i, t in enumerate(titles)]
    sink = SmallTopicsSink(limit=4000)
    assert lives_until_published(tmp_path, messages, sink) == 4  # refused 3 times, then given up
    [dead] = [r.source for r in published(sink, sink.topics.dead_letters)]
    assert dead.offset == 41
    last_dead_letter = published(sink, sink.topics.dead_letters)[-1].value
    assert b'"repeated-failure"' in last_dead_letter and b'"attempts":3' in last_dead_letter
    last_life = sink.waves[-2:]  # its two waves: history and dead letter, then latest
    assert sorted(r.key for r in last_life[0] if r.topic == sink.topics.suggestions) == [b"A0", b"A2", b"A3"]
    assert sorted(r.key for r in last_life[1]) == [b"A0", b"A2", b"A3"]
    assert not list(tmp_path.iterdir())  # nothing left in flight


def test_a_dead_letter_refused_even_when_given_up_ends_as_a_shortened_one(tmp_path):
    poison = os.urandom(15_000).hex().encode()  # 30 KB, not JSON: its whole dead letter is about 40 KB
    messages = [RawMessage(TOPIC, 0, 7, b"k", created("A1", "Harbour")),
                RawMessage(TOPIC, 0, 8, b"p", poison),
                RawMessage(TOPIC, 0, 9, b"k", created("A2", "Boats"))]
    sink = SmallTopicsSink(limit=20_000)
    # Refused as invalid JSON three times, then as repeated-failure kept whole, then shortened.
    assert lives_until_published(tmp_path, messages, sink) == 5
    [record] = published(sink, sink.topics.dead_letters)
    assert record.source.offset == 8 and len(record.value) < 20_000
    assert b'"truncated":true' in record.value and b'"repeated-failure"' in record.value
    assert b'"attempts":4' in record.value
    assert {r.key for r in sink.waves[-2][:2]} == {b"A1", b"A2"}
    assert not list(tmp_path.iterdir())


def test_a_refusal_counts_only_the_earliest_refused_message_of_a_partition(tmp_path):
    big = "W" * 1900
    messages = [RawMessage(TOPIC, 0, i, b"k", created(f"A{i}", big if i in (1, 3) else "Boats"))
                for i in range(5)]
    guard = CrashGuard(AttemptJournal(tmp_path), 3, BatchProcessor(FakeTagger(), StateStore(), consumer="c"))
    try:
        tag_and_publish(guard, messages, SmallTopicsSink(limit=4000))
    except RecordsRefused as exc:
        assert sorted(r.source.offset for r in exc.records if r.topic.endswith("suggestions.v1")) == [1, 3]
    else:
        raise AssertionError("nothing refused")
    # one range per partition: a range over 1..3 would count the innocent message 2 too
    assert AttemptJournal(tmp_path).read((TOPIC, 0)).first == AttemptJournal(tmp_path).read((TOPIC, 0)).last == 1


def test_an_outage_counts_for_nothing_not_even_for_the_batch_encoded_ahead(tmp_path):
    class Down(InMemorySuggestionSink):
        def _write(self, records):
            raise ConnectionError("broker unavailable")

    journal = AttemptJournal(tmp_path)
    guard = CrashGuard(journal, 3, BatchProcessor(FakeTagger(), StateStore(), consumer="c"))
    batch = [RawMessage(TOPIC, 0, i, b"k", created(f"A{i}", "Boats")) for i in range(3)]
    ahead = [RawMessage(TOPIC, 0, i, b"k", created(f"A{i}", "Storm")) for i in range(3, 6)]
    prepare_batch(guard, ahead)  # the next batch, begun in the journal while this one is published
    assert journal.read((TOPIC, 0)) is not None
    try:
        tag_and_publish(guard, batch, Down())
    except PublishFailed:
        pass
    assert journal.read((TOPIC, 0)) is None  # the exit crashed nothing: a restart plans whole batches
    assert len(guard.plan(batch + ahead)) == 1
