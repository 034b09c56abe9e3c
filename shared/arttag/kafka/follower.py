"""Following a compacted topic: read it from the beginning into a table, then keep reading.

One merge rule and one tombstone rule for every reader of ``tags.suggestions.latest.v1``
(the worker's state, the API's latest view), documented in docs/topics.md:

- merge: a record replaces the one held for its key unless the held one is newer, that is
  has a higher ``revision``, or the same revision and a later ``produced_at`` (when both
  records carry one). Ties go to the record read last, which in one partition is the one
  written last. So a replayed older revision never wins;
- tombstone: a record with a null value deletes its key.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message

from arttag.errors import ArttagError
from arttag.kafka.clients import from_beginning, read_to_end
from arttag.settings import KafkaSettings

log = logging.getLogger(__name__)


class Versioned(Protocol):
    """What the merge rule compares."""

    @property
    def revision(self) -> int: ...

    @property
    def produced_at(self) -> datetime | None: ...


V = TypeVar("V", bound=Versioned)


def supersedes(new: Versioned, held: Versioned | None) -> bool:
    """The merge rule: whether ``new`` replaces ``held`` (see the module's docstring)."""
    if held is None or new.revision != held.revision:
        return held is None or new.revision > held.revision
    if new.produced_at is None or held.produced_at is None:
        return True
    return new.produced_at >= held.produced_at


class LatestTable(Generic[V]):
    """Key -> the newest value under :func:`supersedes`; safe to read while a follower writes.

    ``caught_up`` is set once the follower has read the topic to its end as of its start;
    ``on_change(size)`` is called after every change (a gauge, say), and every listener given
    to :meth:`listen` with the key that changed (outside the table's lock, in the writer's thread).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, V] = {}
        self.caught_up = threading.Event()
        self.on_change: Callable[[int], None] | None = None
        self._listeners: list[Callable[[str], None]] = []

    def listen(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(key)`` after each change of a key (merge kept, delete, restore)."""
        self._listeners.append(listener)

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)

    def get(self, key: str) -> V | None:
        with self._lock:
            return self._values.get(key)

    def items(self) -> list[tuple[str, V]]:
        """Every (key, value) held now (a copy)."""
        with self._lock:
            return list(self._values.items())

    def values(self) -> list[V]:
        """A snapshot of every value (the review queue scans them)."""
        with self._lock:
            return list(self._values.values())

    def merge(self, key: str, value: V) -> bool:
        """Keep ``value`` unless the table holds a newer one for ``key``; True when kept."""
        with self._lock:
            if not supersedes(value, self._values.get(key)):
                return False
            self._values[key] = value
            size = len(self._values)
        self._changed(size, key)
        return True

    def delete(self, key: str) -> None:
        """The tombstone rule: the key is gone."""
        with self._lock:
            self._values.pop(key, None)
            size = len(self._values)
        self._changed(size, key)

    def restore(self, key: str, previous: V | None) -> None:
        """Put back what was held before (undo a merge), whatever the rule says."""
        with self._lock:
            if previous is None:
                self._values.pop(key, None)
            else:
                self._values[key] = previous
            size = len(self._values)
        self._changed(size, key)

    def _changed(self, size: int, key: str) -> None:
        if self.on_change is not None:
            self.on_change(size)
        for listener in self._listeners:
            listener(key)


Decoder = Callable[[bytes, list[tuple[str, bytes]] | None], "tuple[str, V]"]
"""``decode(value, headers) -> (key, value)`` for a record that is not a tombstone; raises on bad input."""


class CompactedFollower(Generic[V]):
    """Reads a compacted topic from the beginning into a :class:`LatestTable` and keeps following it.

    ``load()`` reads to the end offsets as of the call and returns (blocking; the worker
    does this before it takes events); ``start()`` follows in a thread, after catching up
    first when ``load()`` was not called (the API, whose ``/readyz`` waits for
    ``table.caught_up``). A missing topic is an error for ``load()``; the thread waits for
    it, with the reason in ``error``. No group: every reader needs every partition, and
    nothing is committed because the table is rebuilt on every start.

    Example::

        table = LatestTable()
        follower = CompactedFollower(kafka, topics.latest, table, decode)
        follower.load()
        follower.start()
    """

    def __init__(self, kafka: KafkaSettings, topic: str | Sequence[str], table: LatestTable[V],
                 decode: Decoder, *, name: str = "compacted-follower", poll_s: float = 0.5,
                 retry_s: float = 2.0) -> None:
        self.kafka = kafka
        # several topics feed one table when their records share keys and the merge rule
        # (an artwork's created and updated events)
        self.topics = (topic,) if isinstance(topic, str) else tuple(topic)
        self.topic = ", ".join(self.topics)
        self.table = table
        self.decode = decode
        self.name = name
        self.poll_s = poll_s
        self.retry_s = retry_s
        self.error: str | None = None
        self._consumer: Consumer | None = None
        self._loaded = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _open(self) -> Consumer:
        if self._consumer is None:
            self._consumer = Consumer({
                **self.kafka.confluent_config(),
                "group.id": f"arttag-{self.name}-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            })
        return self._consumer

    def load(self, timeout_s: float | None = 60.0) -> int:
        """Read the topic to its current end into the table; the number of records read."""
        started = time.monotonic()
        c = self._open()
        read = 0
        for records in read_to_end(c, from_beginning(c, *self.topics), max_messages=1000,
                                   timeout_s=timeout_s, past_end=True, stop=self._stop):
            for msg in records:
                self.apply(msg)
            read += len(records)
        if self._stop.is_set():
            return read
        self._loaded = True
        self.error = None
        self.table.caught_up.set()
        log.info("%s: %d keys from %d records of %s in %.1fs", self.name, len(self.table), read,
                 self.topic, time.monotonic() - started)
        return read

    def apply(self, msg: Message) -> None:
        """One record under the merge and tombstone rules; a record that does not decode is skipped."""
        value = msg.value()
        if value is None:
            key = msg.key().decode("utf-8", "replace") if msg.key() else None
            if key:
                self.table.delete(key)
            return
        try:
            key, decoded = self.decode(value, msg.headers())
        except Exception as exc:  # noqa: BLE001 - a foreign record must not stop the follower
            log.warning("%s: skipping %s[%d]@%d: %s", self.name, msg.topic(), msg.partition(),
                        msg.offset(), exc)
            return
        self.table.merge(key, decoded)

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()  # an API lifespan may run more than once (test clients)
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._loaded and not self._stop.is_set():
                try:
                    self.load(timeout_s=None)
                except (ArttagError, KafkaException) as exc:  # the topic is not there (yet)
                    self._failed(str(exc))
                    self._stop.wait(self.retry_s)
            c = self._open()
            while not self._stop.is_set():
                for msg in c.consume(500, self.poll_s):
                    if msg.error():
                        if msg.error().code() != KafkaError._PARTITION_EOF:
                            self.error = str(msg.error())
                            log.warning("%s: following %s: %s", self.name, self.topic, msg.error())
                        continue
                    self.apply(msg)
        except Exception:  # a dead follower must be visible (the API's /readyz), not a silent thread
            log.exception("%s stopped", self.name)
            self.error = "follower stopped; see logs"
        finally:
            self._close_consumer()

    def _failed(self, error: str) -> None:
        # retried every few seconds: logged when it changes, not on every try
        if error != self.error:
            log.warning("%s: %s", self.name, error)
        self.error = error

    def _close_consumer(self) -> None:
        c, self._consumer = self._consumer, None
        self._loaded = False
        if c is not None:
            c.close()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        else:
            self._close_consumer()

    close = stop
