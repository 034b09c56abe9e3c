"""confluent-kafka clients for the one-shot jobs (backfill, replay, tail), configured alike.

Their producer is :func:`arttag.kafka.make_producer`, the one every arttag process uses.
"""

from __future__ import annotations

import uuid
from typing import Any

from confluent_kafka import Consumer, Producer

from arttag.errors import ArttagError
from arttag.kafka import make_producer as producer  # noqa: F401 - the jobs' name for it
from arttag.settings import KafkaSettings


def consumer(kafka: KafkaSettings, group: str | None = None, **extra: Any) -> Consumer:
    return Consumer({
        **kafka.confluent_config(),
        "group.id": group or f"arttag-reader-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        **extra,
    })


def partitions(client: Consumer, topic: str, timeout_s: float = 30.0) -> list[int]:
    meta = client.list_topics(topic, timeout=timeout_s).topics.get(topic)
    if meta is None or meta.error is not None or not meta.partitions:
        raise ArttagError(f"topic {topic} not found; run `arttag topics create`", topic=topic)
    return sorted(meta.partitions)


def flush_or_fail(p: Producer, timeout_s: float = 60.0) -> None:
    left = p.flush(timeout_s)
    if left:
        raise ArttagError(f"{left} messages not acknowledged by Kafka within {timeout_s:.0f}s")
