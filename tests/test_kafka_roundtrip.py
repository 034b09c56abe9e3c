"""Against the real broker: topics, and an artwork event through Kafka and back."""

from __future__ import annotations

import uuid

import pytest
from arttag.events import (
    ArtworkCreated,
    ArtworkMetadata,
    decode_artwork_event,
    encode_event,
)
from arttag.kafka.admin import admin_client, create_topics
from arttag.kafka.topics import ARTWORKS_CREATED, TAG_SUGGESTIONS_LATEST, topic_name
from confluent_kafka import Consumer, Producer

pytestmark = pytest.mark.kafka


def test_topics_are_created_idempotently_with_compaction(kafka_settings):
    first = create_topics(kafka_settings)
    assert set(first.values()) == {"created"}
    second = create_topics(kafka_settings)
    assert set(second.values()) == {"exists"}
    from confluent_kafka.admin import ConfigResource

    latest = topic_name(TAG_SUGGESTIONS_LATEST, kafka_settings.topic_prefix)
    resource = ConfigResource(ConfigResource.Type.TOPIC, latest)
    admin = admin_client(kafka_settings)
    configs = admin.describe_configs([resource])[resource].result()
    assert configs["cleanup.policy"].value == "compact"
    meta = admin.list_topics(timeout=10).topics[latest]
    assert len(meta.partitions) == kafka_settings.partitions


def test_artwork_event_round_trip(kafka_settings):
    create_topics(kafka_settings)
    topic = topic_name(ARTWORKS_CREATED, kafka_settings.topic_prefix)
    event = ArtworkCreated(artwork_id="T07799", revision=1,
                           artwork=ArtworkMetadata(title="A Fishing Boat in Dieppe Harbour"))
    producer = Producer({**kafka_settings.confluent_config(), "acks": "all"})
    producer.produce(topic, key=event.artwork_id.encode(), value=encode_event(event))
    assert producer.flush(10) == 0
    consumer = Consumer({**kafka_settings.confluent_config(), "group.id": f"t-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    try:
        msg = None
        for _ in range(60):
            msg = consumer.poll(1.0)
            if msg is not None and not msg.error():
                break
        assert msg is not None and not msg.error()
        assert msg.key() == b"T07799"
        assert decode_artwork_event(msg.value()) == event
    finally:
        consumer.close()
