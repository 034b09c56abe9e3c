"""The API against the real broker: the latest view follows the compacted topic; feedback is published."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

import pytest
from arttag.events import (
    Explanation,
    TagFeedbackGiven,
    TagSuggestion,
    TagSuggestionsPublished,
    decode_event,
    encode_event,
)
from arttag.kafka.admin import create_topics
from arttag.kafka.topics import TAG_FEEDBACK, TAG_SUGGESTIONS_LATEST, topic_name
from arttag.settings import ApiSettings
from arttag_api.app import create_app
from arttag_api.auth import hash_api_key
from confluent_kafka import Consumer, Producer
from fastapi.testclient import TestClient

pytestmark = pytest.mark.kafka

KEY = "kafka-test-key"


def _published(artwork_id: str, revision: int, tag_id: str) -> TagSuggestionsPublished:
    suggestion = TagSuggestion(tag_id=tag_id, label=tag_id, score=0.5, confidence=0.5, scorers=["s"],
                               already_assigned=False, explanation=Explanation(summary="s", contributions=[]))
    return TagSuggestionsPublished(
        suggestion_id=TagSuggestionsPublished.make_id(artwork_id, revision, "h", "m1", [suggestion]), artwork_id=artwork_id,
        revision=revision, content_hash="h", model_version="m1", produced_at=datetime.now(timezone.utc),
        suggestions=[suggestion],
    )


def _wait(predicate, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_latest_view_reads_the_compacted_topic_and_feedback_reaches_kafka(kafka_settings, tagger):
    create_topics(kafka_settings)
    latest = topic_name(TAG_SUGGESTIONS_LATEST, kafka_settings.topic_prefix)
    producer = Producer({**kafka_settings.confluent_config(), "acks": "all"})
    for event in [_published("T1", 1, "a"), _published("T1", 3, "b"), _published("T1", 2, "c"),
                  _published("T2", 1, "d"), _published("T3", 1, "e")]:
        producer.produce(latest, key=event.artwork_id.encode(), value=encode_event(event))
    producer.produce(latest, key=b"T4", value=b"not json")  # skipped, logged
    producer.produce(latest, key=b"T3", value=None)  # tombstone: T3 is gone
    assert producer.flush(10) == 0

    settings = ApiSettings(kafka=kafka_settings, api_key_hashes=[hash_api_key(KEY)], latest_view=True)
    with TestClient(create_app(settings, tagger)) as client:
        assert _wait(lambda: client.get("/readyz").json()["latest_view"] == "caught_up")
        ready = client.get("/readyz").json()
        assert ready["ready"] and ready["broker_reachable"] and ready["latest_view_artworks"] == 2

        r = client.get("/v1/artworks/T1/suggestions")
        assert r.status_code == 200
        assert r.json()["revision"] == 3 and r.json()["suggestions"][0]["tag_id"] == "b"
        assert client.get("/v1/artworks/T3/suggestions").status_code == 404
        assert client.get("/v1/artworks/T4/suggestions").status_code == 404

        # a suggestion published while the API runs shows up without a restart
        producer.produce(latest, key=b"T2", value=encode_event(_published("T2", 5, "z")))
        producer.flush(10)
        assert _wait(lambda: client.get("/v1/artworks/T2/suggestions").json().get("revision") == 5)

        tag = tagger.vocabulary.tags[0]
        body = {"artwork_id": "T1", "tag_id": tag.id, "action": "rejected",
                "actor": {"kind": "curator", "id": "jsmith"}, "comment": "not a harbour"}
        r = client.post("/v1/feedback", json=body, headers={"X-API-Key": KEY})
        assert r.status_code == 202, r.text
        event_id = r.json()["event_id"]

    consumer = Consumer({**kafka_settings.confluent_config(), "group.id": f"t-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic_name(TAG_FEEDBACK, kafka_settings.topic_prefix)])
    try:
        found = None
        deadline = time.monotonic() + 30
        while found is None and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is not None and not msg.error():
                found = decode_event(msg.value(), TagFeedbackGiven)
        assert found is not None and found.event_id == event_id
        assert msg.key() == b"T1" and found.action == "rejected" and found.comment == "not a harbour"
        assert found.tag_label == tag.label
    finally:
        consumer.close()


def test_feedback_is_503_when_kafka_is_unreachable(tagger):
    from arttag.settings import KafkaSettings

    settings = ApiSettings(kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1"),
                           api_key_hashes=[hash_api_key(KEY)], latest_view=False)
    app = create_app(settings, tagger)
    app.state.services.publisher_factory = _short_timeout_publisher(settings)
    with TestClient(app) as client:
        body = {"artwork_id": "T1", "tag_id": "1050", "action": "accepted", "actor": {"kind": "public", "id": "p"}}
        r = client.post("/v1/feedback", json=body, headers={"X-API-Key": KEY})
        assert r.status_code == 503 and r.headers["content-type"].startswith("application/problem+json")
        assert int(r.headers["retry-after"]) >= 1
        # the broker's error and the topic go to the log, not to the client
        assert "tags.feedback" not in r.text and "127.0.0.1:1" not in r.text
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "127.0.0.1:1" not in ready.text


def _short_timeout_publisher(settings):
    from arttag_api.publisher import KafkaFeedbackPublisher

    return lambda: KafkaFeedbackPublisher(settings.kafka, timeout_s=2.0)
