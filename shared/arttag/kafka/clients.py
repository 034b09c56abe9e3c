"""confluent-kafka consumers configured alike, and reading topics to their end.

Producers come from :func:`arttag.kafka.make_producer`, the one configuration every arttag
process writes with.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from arttag.errors import ArttagError
from arttag.settings import KafkaSettings


def consumer(kafka: KafkaSettings, group: str | None = None, **extra: Any) -> Consumer:
    """A consumer that commits only when told to; a throw-away group unless ``group`` is given."""
    return Consumer({
        **kafka.confluent_config(),
        "group.id": group or f"arttag-reader-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        **extra,
    })


def partitions(client: Consumer, topic: str, timeout_s: float = 30.0) -> list[int]:
    """The topic's partition numbers; a clear error when the topic does not exist."""
    meta = client.list_topics(topic, timeout=timeout_s).topics.get(topic)
    if meta is None or meta.error is not None or not meta.partitions:
        raise ArttagError(f"topic {topic} not found; run `arttag topics create`", topic=topic)
    return sorted(meta.partitions)


def from_beginning(client: Consumer, *topics: str, timeout_s: float = 30.0) -> list[TopicPartition]:
    """Every partition of ``topics`` at its first offset (a start for :func:`read_to_end`)."""
    return [TopicPartition(t, p, OFFSET_BEGINNING) for t in topics for p in partitions(client, t, timeout_s)]


def flush_or_fail(p: Producer, timeout_s: float = 60.0) -> None:
    """Wait until Kafka acknowledged everything ``p`` was given; raise when it did not in time."""
    left = p.flush(timeout_s)
    if left:
        raise ArttagError(f"{left} messages not acknowledged by Kafka within {timeout_s:.0f}s")


# Errors that pass while a topic created a moment ago elects its leaders or a broker restarts.
# librdkafka does not flag them retriable when get_watermark_offsets reports them, so name them.
TRANSIENT_ERRORS = frozenset({
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError._TIMED_OUT,
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
})


def is_transient(error: object) -> bool:
    """Whether a Kafka error is worth retrying: flagged retriable, or one of :data:`TRANSIENT_ERRORS`."""
    return isinstance(error, KafkaError) and (error.retriable() or error.code() in TRANSIENT_ERRORS)


def watermarks(client: Consumer, tp: TopicPartition, timeout_s: float = 30.0) -> tuple[int, int]:
    """The partition's low and high offsets, retrying transient errors (a topic created a moment
    ago has no leader yet: NOT_LEADER_FOR_PARTITION) until ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return client.get_watermark_offsets(tp, timeout=max(deadline - time.monotonic(), 1.0))
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if not is_transient(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def end_offsets(client: Consumer, start: Sequence[TopicPartition],
                timeout_s: float = 30.0) -> dict[tuple[str, int], int]:
    """Where each partition of ``start`` ends now, for those with something to read from their start."""
    ends: dict[tuple[str, int], int] = {}
    for tp in start:
        low, high = watermarks(client, TopicPartition(tp.topic, tp.partition), timeout_s)
        if tp.offset == OFFSET_BEGINNING:
            first = low
        elif tp.offset == OFFSET_END or tp.offset < 0:  # offsets_for_times' -1: nothing after that time
            first = high
        else:
            first = max(tp.offset, low)
        if high > first:
            ends[(tp.topic, tp.partition)] = high
    return ends


def read_to_end(
    client: Consumer,
    start: Sequence[TopicPartition],
    *,
    max_messages: int = 500,
    poll_s: float = 0.5,
    timeout_s: float | None = None,
    past_end: bool = False,
    stop: threading.Event | None = None,
) -> Iterator[list[Message]]:
    """Assign ``start`` to ``client`` and read until every partition reaches its end offset as of the call.

    ``start`` holds topic partitions with their first offsets (``OFFSET_BEGINNING``, a committed or a
    timestamp's offset). Yields each fetch's records, in partition order, as lists of at most
    ``max_messages`` (an empty topic yields nothing). Records past a partition's end are left out,
    unless ``past_end`` (a follower that goes on reading keeps them: the consumer's position is past them).
    Raises :class:`ArttagError` after ``timeout_s``; returns early when ``stop`` is set.

    Example::

        c = consumer(kafka)
        for records in read_to_end(c, from_beginning(c, topics.latest)):
            ...
    """
    started = time.monotonic()
    remaining = end_offsets(client, start)
    client.assign(list(start))
    while remaining:
        if stop is not None and stop.is_set():
            return
        if timeout_s is not None and time.monotonic() - started > timeout_s:
            where = ", ".join(f"{t}[{p}]" for t, p in sorted(remaining))
            raise ArttagError(f"reading {where} to the end took longer than {timeout_s:.0f}s")
        chunk: list[Message] = []
        for msg in client.consume(max_messages, poll_s):
            if msg.error():
                continue
            key = (msg.topic(), msg.partition())
            end = remaining.get(key)
            if end is None or msg.offset() >= end:
                if past_end:
                    chunk.append(msg)
                continue
            chunk.append(msg)
            if msg.offset() + 1 >= end:
                del remaining[key]
        if chunk:
            yield chunk
