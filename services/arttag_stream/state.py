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


STATE_HEADERS = ("arttag-artwork-id", "arttag-revision", "arttag-content-hash", "arttag-model-version")


def state_headers(artwork_id: str, revision: int, content_hash: str, model_version: str) -> list[tuple[str, bytes]]:
    """Headers the worker puts on latest-suggestions records, so the state is rebuilt
    without parsing every record's explanations."""
    values = (artwork_id, str(revision), content_hash, model_version)
    return [(name, value.encode()) for name, value in zip(STATE_HEADERS, values)]


def _apply(store: StateStore, value: bytes | None, headers: list | None = None) -> bool:
    if not value:
        return False
    try:
        found = {k: v for k, v in headers or () if k in STATE_HEADERS and v is not None}
        if len(found) == len(STATE_HEADERS):
            artwork_id, revision, chash, model = (found[k].decode() for k in STATE_HEADERS)
        else:  # records written without headers: read the four fields from the JSON
            data = json.loads(value)
            artwork_id, revision, chash, model = (data["artwork_id"], data["revision"],
                                                  data["content_hash"], data["model_version"])
        return store.merge(str(artwork_id), ArtworkState(int(revision), str(chash), str(model)))
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
                _apply(self.store, msg.value(), msg.headers())
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
                _apply(self.store, msg.value(), msg.headers())

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._consumer.close()
