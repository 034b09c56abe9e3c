"""Publishing TagFeedbackGiven events: to Kafka (arttag's producer, waits for delivery) or in memory."""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from arttag.errors import ArttagError
from arttag.events import TagFeedbackGiven, encode_event
from arttag.kafka import make_producer
from arttag.kafka.topics import TAG_FEEDBACK, topic_name
from arttag.settings import KafkaSettings
from confluent_kafka import KafkaError

log = logging.getLogger(__name__)


class PublishError(ArttagError):
    """The broker did not confirm the event."""


class FeedbackPublisher(Protocol):
    """Publishes one feedback event and returns only once it is durably stored."""

    def publish(self, event: TagFeedbackGiven) -> None: ...

    def close(self) -> None: ...


class InMemoryFeedbackPublisher:
    """Keeps published events in a list; for tests and ``--dry-run``."""

    def __init__(self) -> None:
        self.events: list[TagFeedbackGiven] = []

    def publish(self, event: TagFeedbackGiven) -> None:
        self.events.append(event)

    def close(self) -> None:
        pass


class KafkaFeedbackPublisher:
    """arttag's producer (:mod:`arttag.kafka.producer`: acks=all, idempotent, murmur2, so feedback
    shares its artwork's partition number); ``publish`` blocks until the broker confirms."""

    def __init__(self, kafka: KafkaSettings, timeout_s: float = 10.0) -> None:
        self.topic = topic_name(TAG_FEEDBACK, kafka.topic_prefix)
        self.timeout_s = timeout_s
        self._producer = make_producer(
            kafka,
            # a curator waits on the answer: fail within the request instead of retrying for minutes
            **{"delivery.timeout.ms": int(timeout_s * 1000), "linger.ms": 0},
        )
        # Producer.poll/flush serve callbacks of every thread; one at a time keeps it simple
        self._lock = threading.Lock()

    def publish(self, event: TagFeedbackGiven) -> None:
        outcome: dict[str, KafkaError | None] = {}

        def delivered(err: KafkaError | None, msg: object) -> None:
            outcome["error"] = err

        with self._lock:
            self._producer.produce(self.topic, key=event.artwork_id.encode("utf-8"),
                                   value=encode_event(event), on_delivery=delivered)
            self._producer.flush(self.timeout_s)
        if "error" not in outcome:
            raise PublishError(f"no delivery report from Kafka for {self.topic} within {self.timeout_s}s",
                               topic=self.topic)
        if outcome["error"] is not None:
            raise PublishError(f"Kafka refused feedback for artwork {event.artwork_id} on {self.topic}: "
                               f"{outcome['error']}", topic=self.topic)
        log.info("feedback %s for artwork %s published to %s", event.event_id, event.artwork_id, self.topic)

    def close(self) -> None:
        self._producer.flush(self.timeout_s)
