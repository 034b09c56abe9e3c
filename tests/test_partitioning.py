"""Every arttag producer partitions by murmur2 of the key, so an artwork's records share a
partition number on every topic; the pure-Python partition function matches Kafka's."""

from __future__ import annotations

import random
import uuid
import zlib

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from arttag.events import FeedbackActor, TagFeedbackGiven
from arttag.kafka import murmur2, murmur2_partitioner, partition_for, producer_config
from arttag.kafka.admin import create_topics
from arttag.kafka.clients import consumer
from arttag.kafka.topics import TAG_DECISIONS, StreamTopics, topic_name
from arttag.settings import KafkaSettings
from confluent_kafka import TopicPartition

# Kafka's Java client (org.apache.kafka.clients.producer.internals.DefaultPartitioner) puts
# these keys on these partitions of a 1000-partition topic.
JAVA_PARTITIONS_OF_1000 = {b"": 681, b"a": 524, b"ab": 434, b"abc": 107, b"123456789": 566,
                           b"\x00 ": 742}


@pytest.mark.parametrize("key,partition", sorted(JAVA_PARTITIONS_OF_1000.items()))
def test_partition_for_matches_the_java_client(key, partition):
    assert partition_for(key, 1000) == partition


def test_murmur2_agrees_with_aiokafka_on_random_keys():
    rng = random.Random(7)
    for _ in range(2000):
        key = rng.randbytes(rng.randrange(0, 40))
        assert murmur2(key) == aiokafka_murmur2(key), key


def test_the_aiokafka_partitioner_is_the_same_rule():
    for i in range(200):
        key = str(i).encode()
        assert murmur2_partitioner(key, [0, 1, 2, 3, 4], [0, 1]) == partition_for(key, 5)
    assert murmur2_partitioner(None, [0, 1, 2], [2]) == 2  # no key: an available partition


def test_partition_for_refuses_a_topic_without_partitions():
    with pytest.raises(ValueError):
        partition_for(b"T1", 0)


def test_producer_config_keeps_the_guarantees_and_refuses_to_weaken_them():
    config = producer_config(KafkaSettings(), **{"linger.ms": 0})
    assert config["acks"] == "all" and config["enable.idempotence"] is True
    assert config["partitioner"] == "murmur2_random" and config["linger.ms"] == 0
    for weaker in ({"acks": 1}, {"enable.idempotence": False}, {"partitioner": "consistent_random"}):
        with pytest.raises(ValueError, match="cannot override"):
            producer_config(KafkaSettings(), **weaker)


def test_crc32_and_murmur2_disagree_on_artworks_5_and_37():
    # The reported symptom, with the default 3 partitions: librdkafka's default partitioner
    # (CRC32) put feedback for these artworks on partition 1, murmur2 everything else on 0.
    for aid in (b"5", b"37"):
        assert partition_for(aid, 3) == 0 and zlib.crc32(aid) % 3 == 1


# -- every producer path on the real broker ---------------------------------------------------------


def _partitions_seen(kafka: KafkaSettings, topic: str) -> list[tuple[bytes, int]]:
    """(key, partition) of every record of ``topic`` up to its current end."""
    c = consumer(kafka)
    try:
        meta = c.list_topics(topic, timeout=10).topics[topic]
        ends = {}
        for p in meta.partitions:
            low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = high
        c.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
        seen: list[tuple[bytes, int]] = []
        while ends:
            for msg in c.consume(500, 1.0):
                if msg.error():
                    continue
                seen.append((msg.key(), msg.partition()))
                if msg.offset() + 1 >= ends.get(msg.partition(), 0):
                    ends.pop(msg.partition(), None)
        return seen
    finally:
        c.close()


def _assert_murmur2(kafka: KafkaSettings, topic: str, at_least: int) -> None:
    seen = _partitions_seen(kafka, topic)
    assert len(seen) >= at_least, f"{topic}: {len(seen)} records"
    wrong = [(k, p, partition_for(k, kafka.partitions)) for k, p in seen
             if p != partition_for(k, kafka.partitions)]
    assert not wrong, f"{topic}: (key, partition, murmur2 partition) {wrong[:5]}"


@pytest.fixture
def kafka5(kafka_bootstrap: str) -> KafkaSettings:
    """Five partitions: CRC32 and murmur2 agree on a key one time in five at best."""
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap,
                             topic_prefix=f"test-{uuid.uuid4().hex[:8]}.", partitions=5)
    create_topics(settings)
    return settings


@pytest.mark.kafka
def test_the_api_feedback_publisher_partitions_by_murmur2(kafka5):
    from arttag_api.publisher import KafkaFeedbackPublisher

    publisher = KafkaFeedbackPublisher(kafka5)
    try:
        for aid in ["5", "37", *(f"T{i:05d}" for i in range(30))]:
            publisher.publish(TagFeedbackGiven(artwork_id=aid, tag_id="1050", action="accepted",
                                               actor=FeedbackActor(kind="curator", id="c1")))
    finally:
        publisher.close()
    _assert_murmur2(kafka5, StreamTopics.for_prefix(kafka5.topic_prefix).feedback, 32)


@pytest.mark.kafka
def test_backfill_and_replay_partition_by_murmur2(kafka5, sample_catalogue, hashing_bundle_dir):
    from arttag.kafka import make_producer
    from arttag.kafka.clients import flush_or_fail
    from arttag.model.bundle import load_tagger
    from arttag.settings import StreamSettings
    from arttag_stream.backfill import backfill
    from arttag_stream.replay import replay_artworks, replay_dead_letters

    topics = StreamTopics.for_prefix(kafka5.topic_prefix)
    report = backfill(kafka5, sample_catalogue, limit=40, progress=False)
    assert report.published == 40
    _assert_murmur2(kafka5, topics.created, 40)

    settings = StreamSettings(kafka=kafka5, bundle_dir=hashing_bundle_dir, encoder_kind="hashing",
                              consumer_group=f"g-{uuid.uuid4().hex[:6]}")
    replayed = replay_artworks(settings, load_tagger(hashing_bundle_dir), model_version="p-test",
                               progress=False)
    assert replayed.suggestions == 40 and replayed.latest == 40
    _assert_murmur2(kafka5, topics.suggestions, 40)
    _assert_murmur2(kafka5, topics.latest, 40)

    # A dead letter written by hand, then re-submitted by the dead-letter replay.
    from arttag.events import encode_event
    from arttag_stream.processing import RawMessage, make_dead_letter

    p = make_producer(kafka5)
    for i in range(10):
        key = f"bad-{i}".encode()
        dead = make_dead_letter(RawMessage(topics.updated, partition_for(key, 5), i, key, b"{"),
                                "message is not JSON", "invalid_json", "test")
        p.produce(topics.dead_letters, key=key, value=encode_event(dead))
    flush_or_fail(p)
    _assert_murmur2(kafka5, topics.dead_letters, 10)
    assert replay_dead_letters(settings, group=f"dl-{uuid.uuid4().hex[:6]}").resubmitted == 10
    _assert_murmur2(kafka5, topics.updated, 10)


@pytest.mark.kafka
def test_the_curation_processor_partitions_decisions_and_dead_letters_by_murmur2(kafka5, tmp_path):
    from arttag.kafka import make_producer
    from arttag.kafka.clients import flush_or_fail
    from arttag.settings import CurateSettings
    from arttag_api.publisher import KafkaFeedbackPublisher
    from arttag_curate.processor import CurateProcessor

    topics = StreamTopics.for_prefix(kafka5.topic_prefix)
    artworks = ["5", "37", *(f"T{i:05d}" for i in range(28))]
    publisher = KafkaFeedbackPublisher(kafka5)
    try:
        for aid in artworks:
            publisher.publish(TagFeedbackGiven(artwork_id=aid, tag_id="1050", action="accepted",
                                               actor=FeedbackActor(kind="curator", id="c1")))
    finally:
        publisher.close()
    # Unreadable feedback, so the processor writes dead letters (with the keys of the originals).
    p = make_producer(kafka5)
    for i in range(10):
        p.produce(topics.feedback, key=f"bad-{i}".encode(), value=b"{")
    flush_or_fail(p)

    settings = CurateSettings(kafka=kafka5, curate_group=f"curate-{uuid.uuid4().hex[:6]}",
                              curation_database_url=f"sqlite:///{tmp_path / 'curation.db'}")
    report = CurateProcessor(settings).run(until_caught_up=True)
    assert (report.feedback_read, report.published, report.dead_lettered) == (30, 30, 10)
    _assert_murmur2(kafka5, topic_name(TAG_DECISIONS, kafka5.topic_prefix), 30)
    _assert_murmur2(kafka5, topics.dead_letters, 10)


def test_the_faust_workers_producer_has_the_same_guarantees(tmp_path):
    import asyncio

    from arttag.model.fake_tagger import FakeTagger
    from arttag.settings import StreamSettings
    from arttag_stream.app import create_app

    async def client_of_the_worker():
        app = create_app(StreamSettings(data_dir=tmp_path), FakeTagger())
        return app.producer._new_producer()  # the aiokafka producer faust would start

    client = asyncio.run(client_of_the_worker())
    assert client._partitioner is murmur2_partitioner
    assert client._txn_manager is not None  # aiokafka keeps one only for idempotent producers
    assert client._sender._acks == -1  # all in-sync replicas


def test_librdkafka_pid_retries_are_debug_and_other_lines_keep_their_level(caplog):
    import logging

    from arttag.kafka.producer import LibrdkafkaLog

    log = LibrdkafkaLog()
    with caplog.at_level(logging.DEBUG, logger="arttag.kafka.librdkafka"):
        log.log(logging.WARNING, "%s [%s] %s", "GETPID", "rdkafka#producer-1",
                "[thrd:main]: Failed to acquire idempotence PID from broker 127.0.0.1:9092/1: "
                "Broker: Coordinator load in progress: retrying")
        log.log(logging.ERROR, "%s [%s] %s", "FAIL", "rdkafka#producer-1",
                "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused")
    assert [(r.levelno, r.getMessage().split()[0]) for r in caplog.records] == \
        [(logging.DEBUG, "GETPID"), (logging.ERROR, "FAIL")]
