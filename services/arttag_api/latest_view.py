"""The latest suggestions per artwork, held in memory and fed from the compacted topic.

The compacted ``tags.suggestions.latest.v1`` topic is the source of truth: the
view is rebuilt by reading it from the beginning on every start, so there is no
extra store to operate or migrate, and a restarted API converges on the same state.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from arttag.errors import EventDecodeError
from arttag.events import TagSuggestionsPublished, decode_event
from arttag.settings import KafkaSettings
from arttag.topics import TAG_SUGGESTIONS_LATEST, topic_name

log = logging.getLogger(__name__)


class LatestSuggestionsView:
    """Artwork id -> newest TagSuggestionsPublished; safe to read while the follower writes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[str, TagSuggestionsPublished] = {}
        self.caught_up = threading.Event()
        self.on_change: Callable[[int], None] | None = None

    def __len__(self) -> int:
        return len(self._latest)

    def get(self, artwork_id: str) -> TagSuggestionsPublished | None:
        return self._latest.get(artwork_id)

    def apply(self, event: TagSuggestionsPublished) -> bool:
        """Keep ``event`` unless the view holds a newer revision; returns whether it was kept.

        Ties on revision go to the later ``produced_at`` (a re-run with a new model).
        Partitions are keyed by artwork id, so order within one artwork is the
        topic's; the revision check also covers a backfill replaying old revisions.
        """
        with self._lock:
            current = self._latest.get(event.artwork_id)
            if current is not None and (current.revision, current.produced_at) > (
                event.revision, event.produced_at
            ):
                return False
            self._latest[event.artwork_id] = event
            size = len(self._latest)
        if self.on_change:
            self.on_change(size)
        return True

    def delete(self, artwork_id: str) -> None:
        """A tombstone: the artwork was removed from the compacted topic."""
        with self._lock:
            self._latest.pop(artwork_id, None)
            size = len(self._latest)
        if self.on_change:
            self.on_change(size)


class LatestViewFollower:
    """A background thread reading the compacted topic from the beginning into a view.

    It assigns every partition at the first offset instead of joining a consumer
    group: each API replica needs the whole topic, and no offsets are committed
    because the view is rebuilt from scratch on start.
    """

    def __init__(self, kafka: KafkaSettings, view: LatestSuggestionsView, poll_s: float = 0.5) -> None:
        self.kafka = kafka
        self.view = view
        self.poll_s = poll_s
        self.topic = topic_name(TAG_SUGGESTIONS_LATEST, kafka.topic_prefix)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()  # an app's lifespan may run more than once (test clients)
        self._thread = threading.Thread(target=self._run, name="latest-view", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _consumer(self) -> Consumer:
        return Consumer({
            **self.kafka.confluent_config(),
            "group.id": f"arttag-api-view-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        })

    def _failed(self, error: str) -> None:
        # retried every few seconds: logged when it changes, not on every try
        if error != self.error:
            log.warning("latest view: %s", error)
        self.error = error

    def _assign(self, consumer: Consumer) -> set[int] | None:
        """Assigns all partitions from the beginning; None while the topic does not exist yet."""
        try:
            meta = consumer.list_topics(self.topic, timeout=5.0).topics.get(self.topic)
        except KafkaException as exc:
            self._failed(f"cannot list {self.topic}: {exc}")
            return None
        if meta is None or meta.error is not None or not meta.partitions:
            self._failed(f"topic {self.topic} not found")
            return None
        partitions = set(meta.partitions)
        consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in sorted(partitions)])
        self.error = None
        log.info("latest view: reading %s (%d partitions) from the beginning", self.topic, len(partitions))
        return partitions

    def _run(self) -> None:
        consumer = self._consumer()
        try:
            pending: set[int] | None = None
            while not self._stop.is_set():
                if pending is None:
                    pending = self._assign(consumer)
                    if pending is None:
                        self._stop.wait(2.0)
                        continue
                    if not pending:
                        self.view.caught_up.set()
                msg = consumer.poll(self.poll_s)
                if msg is None:
                    continue
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        pending.discard(msg.partition())
                        if not pending and not self.view.caught_up.is_set():
                            log.info("latest view caught up: %d artworks", len(self.view))
                            self.view.caught_up.set()
                    else:
                        self.error = str(msg.error())
                        log.warning("latest view: %s", msg.error())
                    continue
                self._handle(msg)
        except Exception:  # a dead follower must be visible in /readyz, not a silent thread
            log.exception("latest view follower stopped")
            self.error = "follower stopped; see logs"
        finally:
            consumer.close()

    def _handle(self, msg) -> None:  # noqa: ANN001 - confluent_kafka.Message
        where = f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"
        if msg.value() is None:
            key = msg.key().decode("utf-8", "replace") if msg.key() else None
            if key:
                self.view.delete(key)
            return
        try:
            event = decode_event(msg.value(), TagSuggestionsPublished)
        except EventDecodeError as exc:
            log.warning("latest view: skipping %s: %s", where, exc)
            return
        self.view.apply(event)
        log.debug("latest view: artwork %s revision %d from %s", event.artwork_id, event.revision, where)
