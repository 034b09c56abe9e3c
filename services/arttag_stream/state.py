"""The per-artwork state, rebuilt from the compacted latest-suggestions topic and kept following it."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from arttag.errors import ArttagError
from arttag.settings import KafkaSettings

from arttag_stream.processing import ArtworkState, StateStore

log = logging.getLogger(__name__)


def _apply(store: StateStore, value: bytes | None) -> bool:
    if not value:
        return False
    try:
        # Only four fields matter; a full pydantic parse of every explanation is slow.
        data = json.loads(value)
        state = ArtworkState(int(data["revision"]), str(data["content_hash"]), str(data["model_version"]))
        return store.merge(str(data["artwork_id"]), state)
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("latest-suggestions record ignored: %s", exc)
        return False


class LatestFollower:
    """Reads the latest-suggestions topic from the beginning into a :class:`StateStore`.

    ``load()`` blocks until every partition's end (as of the call) is read;
    ``start()`` then keeps following the topic in a thread, so suggestions that
    other workers of the group publish reach this worker's state too (they
    matter after a rebalance hands it their partitions).
    """

    def __init__(self, kafka: KafkaSettings, topic: str, store: StateStore) -> None:
        self.topic = topic
        self.store = store
        self._consumer = Consumer({
            **kafka.confluent_config(),
            "group.id": f"arttag-state-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        })
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def load(self, timeout_s: float = 60.0) -> int:
        started = time.monotonic()
        meta = self._consumer.list_topics(self.topic, timeout=timeout_s)
        topic_meta = meta.topics.get(self.topic)
        if topic_meta is None or topic_meta.error is not None or not topic_meta.partitions:
            raise ArttagError(f"topic {self.topic} not found; run `arttag topics create`",
                              topic=self.topic)
        ends: dict[int, int] = {}
        for p in topic_meta.partitions:
            low, high = self._consumer.get_watermark_offsets(
                TopicPartition(self.topic, p), timeout=timeout_s
            )
            if high > low:
                ends[p] = high
        self._consumer.assign(
            [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in topic_meta.partitions]
        )
        remaining = dict(ends)
        read = 0
        while remaining:
            if time.monotonic() - started > timeout_s:
                raise ArttagError(f"reading {self.topic} took longer than {timeout_s:.0f}s")
            for msg in self._consumer.consume(1000, 0.5):
                if msg.error():
                    continue
                read += 1
                _apply(self.store, msg.value())
                p = msg.partition()
                if p in remaining and msg.offset() + 1 >= remaining[p]:
                    del remaining[p]
        log.info("state: %d artworks from %d records of %s in %.1fs", len(self.store), read,
                 self.topic, time.monotonic() - started)
        return read

    def start(self) -> None:
        self._thread = threading.Thread(target=self._follow, name="latest-follower", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        while not self._stop.is_set():
            for msg in self._consumer.consume(500, 0.5):
                if msg.error():
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        log.warning("following %s: %s", self.topic, msg.error())
                    continue
                _apply(self.store, msg.value())

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._consumer.close()
