"""arttag.kafka: the follower's merge and tombstone rules, read-to-end, the sinks' order, and
one publishing function for the worker and replay."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from arttag.events import (
    ArtworkCreated,
    ArtworkMetadata,
    TagSuggestionsPublished,
    encode_event,
)
from arttag.kafka import make_producer
from arttag.kafka.admin import create_topics
from arttag.kafka.clients import consumer, flush_or_fail, from_beginning, read_to_end
from arttag.kafka.follower import LatestTable, supersedes
from arttag.kafka.sink import InMemorySuggestionSink, PublishFailed, latest_headers
from arttag.kafka.topics import StreamTopics
from arttag.model.fake_tagger import FakeTagger
from arttag.settings import StreamSettings
from arttag_stream.attempts import CrashGuard
from arttag_stream.pipeline import process_batch, tag_and_publish
from arttag_stream.processing import (
    ArtworkState,
    BatchProcessor,
    RawMessage,
    StateStore,
)
from arttag_stream.state import LatestFollower
from confluent_kafka import TopicPartition

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def published(artwork_id: str, revision: int, at: datetime, model: str = "m1") -> TagSuggestionsPublished:
    return TagSuggestionsPublished(
        suggestion_id=TagSuggestionsPublished.make_id(artwork_id, revision, "h", model, []),
        artwork_id=artwork_id, revision=revision, content_hash="h", model_version=model,
        produced_at=at, suggestions=[])


def created(aid: str, title: str = "Boat at sea", revision: int = 1) -> bytes:
    return encode_event(ArtworkCreated(artwork_id=aid, revision=revision, artwork=ArtworkMetadata(title=title)))


# -- the merge rule ----------------------------------------------------------------------------------


def test_merge_rule_higher_revision_then_later_produced_at_ties_to_the_last_read():
    assert supersedes(published("T", 2, T0), None)
    assert supersedes(published("T", 3, T0), published("T", 2, T0 + timedelta(days=1)))
    assert not supersedes(published("T", 1, T0 + timedelta(days=1)), published("T", 2, T0))
    assert supersedes(published("T", 2, T0 + timedelta(seconds=1)), published("T", 2, T0))  # a re-run
    assert not supersedes(published("T", 2, T0), published("T", 2, T0 + timedelta(seconds=1)))
    assert supersedes(published("T", 2, T0), published("T", 2, T0))  # a tie: the later record wins
    # the worker's state has no produced_at: revisions alone decide, ties to the later record
    assert supersedes(ArtworkState(2, "b", "m2"), ArtworkState(2, "a", "m1"))
    assert not supersedes(ArtworkState(1, "b", "m2"), ArtworkState(2, "a", "m1"))


def test_latest_table_counts_changes_and_deletes():
    table: LatestTable[TagSuggestionsPublished] = LatestTable()
    sizes: list[int] = []
    table.on_change = sizes.append
    assert table.merge("T", published("T", 2, T0))
    assert not table.merge("T", published("T", 1, T0 + timedelta(days=1)))
    assert table.get("T").revision == 2
    table.delete("T")
    assert table.get("T") is None and sizes == [1, 0]


# -- the follower and read-to-end, on the real broker ------------------------------------------------


def _produce(kafka, topic, records) -> None:
    p = make_producer(kafka)
    for key, value, headers in records:
        p.produce(topic, key=key, value=value, headers=headers)
    flush_or_fail(p)


@pytest.mark.kafka
def test_both_followers_apply_the_same_rules_to_the_compacted_topic(kafka_settings):
    from arttag_api.latest_view import LatestSuggestionsView, LatestViewFollower

    create_topics(kafka_settings)
    topic = StreamTopics.for_prefix(kafka_settings.topic_prefix).latest
    later = T0 + timedelta(seconds=5)
    records = [
        (b"T1", encode_event(published("T1", 2, T0)), None),
        (b"T1", encode_event(published("T1", 1, later)), None),  # an older revision replayed: ignored
        (b"T2", encode_event(published("T2", 1, T0)), None),
        (b"T2", None, None),  # tombstone: T2 is gone
        (b"T3", encode_event(published("T3", 4, T0, "m1")), None),
        (b"T3", encode_event(published("T3", 4, later, "m2")), None),  # same revision, later model run
        (b"T4", b"not an event", None),  # skipped, the follower goes on
    ]
    records = [(k, v, latest_headers(json.loads(v)["artwork_id"], json.loads(v)["revision"], "h",
                                     json.loads(v)["model_version"]) if v and v.startswith(b"{") else None)
               for k, v, _ in records]
    _produce(kafka_settings, topic, records)

    store = StateStore()
    state = LatestFollower(kafka_settings, topic, store)
    view = LatestSuggestionsView()
    api = LatestViewFollower(kafka_settings, view, poll_s=0.1)
    try:
        assert state.load(timeout_s=60) == len(records)
        api.start()
        assert view.caught_up.wait(60)
        for table in (store, view):
            assert table.get("T1").revision == 2
            assert table.get("T2") is None
            assert table.get("T3").model_version == "m2"
            assert table.get("T4") is None
        state.start()  # following: a tombstone for T1 reaches both
        _produce(kafka_settings, topic, [(b"T1", None, None)])
        for table in (store, view):
            deadline = threading.Event()
            for _ in range(100):
                if table.get("T1") is None:
                    break
                deadline.wait(0.1)
            assert table.get("T1") is None
    finally:
        state.close()
        api.stop()


@pytest.mark.kafka
def test_read_to_end_stops_at_the_end_as_of_the_call_and_starts_where_told(kafka_settings):
    create_topics(kafka_settings)
    topic = StreamTopics.for_prefix(kafka_settings.topic_prefix).created
    _produce(kafka_settings, topic, [(f"A{i}".encode(), f"v{i}".encode(), None) for i in range(40)])
    c = consumer(kafka_settings)
    try:
        seen = []
        for n, chunk in enumerate(read_to_end(c, from_beginning(c, topic), max_messages=7, timeout_s=60)):
            assert len(chunk) <= 7
            seen += [(m.partition(), m.offset(), m.value()) for m in chunk]
            if n == 0:  # written after the call: beyond the end, not read
                _produce(kafka_settings, topic, [(b"late", b"late", None)])
        assert sorted(v for _, _, v in seen) == sorted(f"v{i}".encode() for i in range(40))
        by_partition = {p: [o for q, o, _ in seen if q == p] for p, _, _ in seen}
        assert all(offsets == list(range(len(offsets))) for offsets in by_partition.values())
    finally:
        c.close()
    c = consumer(kafka_settings)
    try:  # from given offsets: the last two records of each partition, and the late one
        start = [TopicPartition(topic, p, len(offsets) - 2) for p, offsets in by_partition.items()]
        again = [m.value() for chunk in read_to_end(c, start, timeout_s=60) for m in chunk]
        assert len(again) == 2 * len(by_partition) + 1 and b"late" in again
    finally:
        c.close()
    c = consumer(kafka_settings)
    try:  # an empty topic yields nothing and returns at once
        empty = StreamTopics.for_prefix(kafka_settings.topic_prefix).feedback
        assert list(read_to_end(c, from_beginning(c, empty), timeout_s=60)) == []
    finally:
        c.close()


# -- the sinks' order ----------------------------------------------------------------------------------


def _batch() -> list[RawMessage]:
    topic = "artworks.created.v1"
    return [RawMessage(topic, 0, 0, b"T1", created("T1", "Harbour at night")),
            RawMessage(topic, 0, 1, b"bad", b"{not json"),
            RawMessage(topic, 0, 2, b"T2", created("T2", "Mill by a river"))]


def test_in_memory_sink_publishes_history_and_dead_letters_then_latest_with_headers():
    topics = StreamTopics.for_prefix("")
    sink = InMemorySuggestionSink(topics)
    result = tag_and_publish(CrashGuard(None, 0, BatchProcessor(FakeTagger(), StateStore(), consumer="c")),
                             _batch(), sink)
    first, then = sink.waves
    assert [(r.topic, r.key) for r in first] == [(topics.suggestions, b"T1"), (topics.suggestions, b"T2"),
                                                 (topics.dead_letters, b"bad")]
    assert [(r.topic, r.key) for r in then] == [(topics.latest, b"T1"), (topics.latest, b"T2")]
    assert all(not r.headers for r in first)
    assert then[0].headers == latest_headers("T1", 1, result.latest[0].content_hash, "fake-1")
    assert then[0].value == first[0].value == result.value(result.latest[0])


def test_a_dead_letter_filter_leaves_out_what_it_refuses():
    sink = InMemorySuggestionSink(publish_dead_letter=lambda d: d.error_type == "model")
    tag_and_publish(CrashGuard(None, 0, BatchProcessor(FakeTagger(), StateStore(), consumer="c")), _batch(), sink)
    assert [r.key for r in sink.records] == [b"T1", b"T2", b"T1", b"T2"]


class _Channel:
    """A faust topic as the worker's sink uses it: ``send`` queues a record and returns a future
    that the broker resolves later (on the next turns of the loop), or fails for ``failing`` keys."""

    def __init__(self, name: str, log: list, acked: list, failing: frozenset[bytes] = frozenset()) -> None:
        self.name, self.log, self.acked, self.failing = name, log, acked, failing

    async def send(self, *, key, value, headers, force):
        self.log.append((self.name, key, value, headers, len(self.acked)))
        loop = asyncio.get_running_loop()
        ack = loop.create_future()

        def broker_answers() -> None:
            if key in self.failing:
                ack.set_exception(RuntimeError(f"broker refused {key!r}"))
            else:
                self.acked.append(key)
                ack.set_result(None)
        loop.call_later(0.01, broker_answers)
        return ack


def _faust_sink(topics: StreamTopics, failing: frozenset[bytes] = frozenset()):
    from arttag_stream.app import FaustSuggestionSink

    sent: list[tuple] = []
    acked: list[bytes] = []
    names = (topics.suggestions, topics.latest, topics.dead_letters)
    return FaustSuggestionSink(topics, {t: _Channel(t, sent, acked, failing) for t in names}), sent


def test_the_faust_sinks_publish_async_writes_the_in_memory_sinks_waves():
    """The worker publishes with ``publish_async`` on its event loop, replay with ``publish``:
    the same records, in the same order, the latest wave sent only once the first is acknowledged."""
    topics = StreamTopics.for_prefix("")
    result = process_batch(CrashGuard(None, 0, BatchProcessor(FakeTagger(), StateStore(), consumer="c")),
                           _batch())
    memory = InMemorySuggestionSink(topics)
    memory.publish(result)
    sink, sent = _faust_sink(topics)
    asyncio.run(sink.publish_async(result))

    assert [(topic, key, value, headers or []) for topic, key, value, headers, _ in sent] == \
        [(r.topic, r.key, r.value, r.headers) for r in memory.records]
    first = len(memory.waves[0])
    assert [acked_before for *_, acked_before in sent] == [0] * first + [first] * len(memory.waves[1])


def test_the_faust_sink_raises_publish_failed_and_sends_no_latest_record_when_the_history_fails():
    topics = StreamTopics.for_prefix("")
    result = process_batch(CrashGuard(None, 0, BatchProcessor(FakeTagger(), StateStore(), consumer="c")),
                           _batch())
    sink, sent = _faust_sink(topics, failing=frozenset({b"T2"}))
    with pytest.raises(PublishFailed, match="broker refused"):
        asyncio.run(sink.publish_async(result))
    assert sent and all(topic != topics.latest for topic, *_ in sent)


@pytest.mark.kafka
def test_replay_publishes_through_the_workers_function(kafka_settings, monkeypatch):
    import arttag_stream.replay as replay

    create_topics(kafka_settings)
    topics = StreamTopics.for_prefix(kafka_settings.topic_prefix)
    messages = [(f"T{i}".encode(), created(f"T{i}", f"Boat {i}"), None) for i in range(6)]
    _produce(kafka_settings, topics.created, messages)
    calls: list[object] = []

    def spy(guard, batch, sink):
        calls.append(sink)
        return tag_and_publish(guard, batch, sink)

    monkeypatch.setattr(replay, "tag_and_publish", spy)
    settings = StreamSettings(kafka=kafka_settings, encoder_kind="hashing")
    sink = InMemorySuggestionSink(topics)
    report = replay.replay_artworks(settings, FakeTagger(), model_version="fake-2", progress=False,
                                    sink=sink, dry_run=True)
    assert calls and all(s is sink for s in calls) and report.read == 6 and report.suggestions == 6
    # the same messages through the function directly give the same records, in the same order
    direct = InMemorySuggestionSink(topics)
    processor = BatchProcessor(FakeTagger(), StateStore(), consumer=report.group, model_version="fake-2")
    c = consumer(kafka_settings)
    try:
        raw = [RawMessage(m.topic(), m.partition(), m.offset(), m.key(), m.value())
               for chunk in read_to_end(c, from_beginning(c, topics.created)) for m in chunk]
    finally:
        c.close()
    tag_and_publish(CrashGuard(None, 0, processor), raw, direct)

    def shape(records):
        return sorted((r.topic, r.key, tuple(r.headers)) for r in records)

    assert shape(sink.records) == shape(direct.records) and len(sink.waves) == 2 * len(calls)


def test_watermarks_wait_out_a_retriable_error_and_raise_the_others():
    from confluent_kafka import KafkaError, KafkaException, TopicPartition

    from arttag.kafka.clients import watermarks

    class NewTopic:
        """A topic created a moment ago: no leader for the first two asks."""

        def __init__(self, error: KafkaError) -> None:
            self.error, self.asked = error, 0

        def get_watermark_offsets(self, tp, timeout):
            self.asked += 1
            if self.asked <= 2:
                raise KafkaException(self.error)
            return 0, 5

    # get_watermark_offsets reports a missing leader without the retriable flag (seen in CI)
    leaderless = NewTopic(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION))
    assert watermarks(leaderless, TopicPartition("t", 0), timeout_s=10) == (0, 5)
    assert leaderless.asked == 3
    flagged = NewTopic(KafkaError(KafkaError.INVALID_MSG, retriable=True))
    assert watermarks(flagged, TopicPartition("t", 0), timeout_s=10) == (0, 5)
    denied = NewTopic(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
    with pytest.raises(KafkaException):
        watermarks(denied, TopicPartition("t", 0), timeout_s=10)
    assert denied.asked == 1


@pytest.mark.kafka
def test_catalogue_follower_keeps_each_artworks_newest_record_from_both_topics(kafka_settings):
    from arttag.kafka.artworks import CatalogueFollower, LatestArtworks

    create_topics(kafka_settings)
    topics = StreamTopics.for_prefix(kafka_settings.topic_prefix)
    _produce(kafka_settings, topics.created, [
        (b"a1", created("a1", "First title", 1), None),
        (b"a2", created("a2", "Only title", 1), None),
        (b"a9", b"{not json", None),  # the worker dead-letters it; the catalogue skips it
    ])
    updated = json.loads(created("a1", "Second title", 2))
    updated["event_type"] = "artwork.updated"
    older = json.loads(created("a2", "Older revision re-sent", 0))
    older["event_type"] = "artwork.updated"
    _produce(kafka_settings, topics.updated, [
        (b"a1", json.dumps(updated).encode(), None), (b"a2", json.dumps(older).encode(), None),
    ])
    catalogue = LatestArtworks()
    follower = CatalogueFollower(kafka_settings, catalogue, poll_s=0.2)
    try:
        assert follower.load(timeout_s=60) == 5
        assert catalogue.metadata("a1").title == "Second title"
        assert catalogue.metadata("a2").title == "Only title"
        assert catalogue.metadata("a9") is None and len(catalogue) == 2
        follower.start()
        _produce(kafka_settings, topics.created, [(b"a3", created("a3", "Arrived later", 1), None)])
        deadline = time.monotonic() + 30  # a bound on waiting, not an assertion on speed
        while catalogue.metadata("a3") is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert catalogue.metadata("a3").title == "Arrived later"
    finally:
        follower.stop()
