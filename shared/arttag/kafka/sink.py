"""Publishing a batch's suggestions: the one order, behind a small contract with three implementations.

The order (:meth:`PublishingOrder.waves_of`, the one definition both :meth:`SuggestionSink.publish`
and :meth:`AsyncSuggestionSink.publish_async` write): the history suggestions and the dead letters,
wait until Kafka acknowledged them, then the latest-suggestions records with their headers,
wait again. A crash between the two waves leaves the batch to be redone, and the state
(rebuilt from the latest topic) never claims an answer the history does not hold.

- :class:`ConfluentSuggestionSink`: a confluent-kafka producer (replay, anything synchronous);
- :class:`InMemorySuggestionSink`: records in a list, for tests and ``--dry-run``;
- the faust worker's sink, an :class:`AsyncSuggestionSink`, lives with the worker
  (``arttag_stream.app``), so faust stays there.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from confluent_kafka import Producer

from arttag import limits
from arttag.errors import ArttagError
from arttag.events import DeadLetter, TagSuggestionsPublished
from arttag.kafka.clients import flush_or_fail
from arttag.kafka.topics import StreamTopics

LATEST_HEADERS = ("arttag-artwork-id", "arttag-revision", "arttag-content-hash", "arttag-model-version")


def latest_headers(artwork_id: str, revision: int, content_hash: str, model_version: str) -> list[tuple[str, bytes]]:
    """The headers of a latest-suggestions record, so readers of the state need not parse every
    record's explanations (docs/topics.md)."""
    values = (artwork_id, str(revision), content_hash, model_version)
    return [(name, value.encode()) for name, value in zip(LATEST_HEADERS, values)]


def suggestion_key(event: TagSuggestionsPublished) -> bytes:
    return event.artwork_id.encode()


def suggestion_headers(event: TagSuggestionsPublished) -> list[tuple[str, bytes]]:
    return latest_headers(event.artwork_id, event.revision, event.content_hash, event.model_version)


def dead_letter_key(key: bytes | None) -> bytes | None:
    """The dead-letter record's key: the original key, or its first bytes when it is long."""
    return key if key is None else key[:limits.DEAD_LETTER_PREFIX_BYTES]


class PublishFailed(ArttagError):
    """Kafka did not acknowledge a batch's records."""


class RecordsRefused(PublishFailed):
    """The broker refused ``records`` as too large (``MESSAGE_TOO_LARGE``: the topic's
    ``max.message.bytes``, or the broker's ``message.max.bytes``, is below
    ``ARTTAG_MAX_RECORD_BYTES``). Unlike an outage this repeats on every try with the same
    records, so the worker counts it as an attempt of the messages they answer
    (:meth:`arttag_stream.attempts.CrashGuard.refusals`)."""

    def __init__(self, message: str, records: Sequence[OutRecord]) -> None:
        super().__init__(message, topics=sorted({r.topic for r in records}))
        self.records = list(records)


@dataclass(frozen=True)
class OutRecord:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    source: Any = field(default=None, compare=False, repr=False)
    """The incoming message this record answers (a suggestion's, a dead letter's), when known."""


class _Keyed(Protocol):
    @property
    def key(self) -> bytes | None: ...


class Publishable(Protocol):
    """What a batch hands to a sink (``arttag_stream.processing.BatchResult`` is one)."""

    suggestions: Sequence[tuple[Any, TagSuggestionsPublished]]
    dead_letters: Sequence[tuple[_Keyed, DeadLetter]]
    latest: Sequence[TagSuggestionsPublished]

    def value(self, event: TagSuggestionsPublished | DeadLetter) -> bytes: ...


class PublishingOrder:
    """The one order of a batch's records, shared by the blocking and the asynchronous sinks.

    ``publish_dead_letter(dead)`` chooses which dead letters are published (default: all);
    a replay leaves out the undecodable messages the worker dead-lettered already.
    """

    def __init__(self, topics: StreamTopics, *,
                 publish_dead_letter: Callable[[DeadLetter], bool] | None = None) -> None:
        self.topics = topics
        self.publish_dead_letter = publish_dead_letter

    def waves_of(self, result: Publishable) -> Iterator[list[OutRecord]]:
        """The waves to write in turn, each acknowledged before the next is sent: the history
        suggestions and the dead letters, then the latest records with their headers; each record
        names the message it answers (``source``). An empty wave is left out."""
        first = [OutRecord(self.topics.suggestions, suggestion_key(s), result.value(s), source=m)
                 for m, s in result.suggestions]
        first += [OutRecord(self.topics.dead_letters, dead_letter_key(m.key), result.value(d), source=m)
                  for m, d in result.dead_letters
                  if self.publish_dead_letter is None or self.publish_dead_letter(d)]
        answering = {id(s): m for m, s in result.suggestions}  # a latest record is one of the suggestions
        then = [OutRecord(self.topics.latest, suggestion_key(s), result.value(s), suggestion_headers(s),
                          source=answering.get(id(s)))
                for s in result.latest]
        yield from (wave for wave in (first, then) if wave)


@contextmanager
def _as_publish_failed() -> Iterator[None]:
    """Any failure to write a wave is the same to the caller: :class:`PublishFailed`."""
    try:
        yield
    except PublishFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - see above
        raise PublishFailed(f"{type(exc).__name__}: {exc}") from exc


class SuggestionSink(PublishingOrder, ABC):
    """Publishes batches in the one order, blocking; subclasses implement :meth:`_write`.

    Example (a sink that prints)::

        class PrintSink(SuggestionSink):
            def _write(self, records):
                for r in records:
                    print(r.topic, r.key, len(r.value))
    """

    def publish(self, result: Publishable) -> None:
        """Publish ``result``; returns once Kafka acknowledged every record, raises :class:`PublishFailed`."""
        for wave in self.waves_of(result):
            with _as_publish_failed():
                self._write(wave)

    @abstractmethod
    def _write(self, records: Sequence[OutRecord]) -> None:
        """Send ``records`` in order and return once every one is acknowledged; raise otherwise."""

    def close(self) -> None:
        """Release the client, if the sink owns one."""


class AsyncSuggestionSink(PublishingOrder, ABC):
    """Publishes batches in the one order on an event loop (the faust worker's sink,
    ``arttag_stream.app.FaustSuggestionSink``); subclasses implement :meth:`_write_async`."""

    async def publish_async(self, result: Publishable) -> None:
        """:meth:`SuggestionSink.publish` on the event loop: the same waves, each awaited until
        acknowledged; raises :class:`PublishFailed`."""
        for wave in self.waves_of(result):
            with _as_publish_failed():
                await self._write_async(wave)

    @abstractmethod
    async def _write_async(self, records: Sequence[OutRecord]) -> None:
        """Send ``records`` in order and return once every one is acknowledged; raise otherwise."""


class ConfluentSuggestionSink(SuggestionSink):
    """Publishes with a confluent-kafka producer (:func:`arttag.kafka.make_producer`)."""

    def __init__(self, producer: Producer, topics: StreamTopics, *, flush_timeout_s: float = 60.0,
                 publish_dead_letter: Callable[[DeadLetter], bool] | None = None) -> None:
        super().__init__(topics, publish_dead_letter=publish_dead_letter)
        self.producer = producer
        self.flush_timeout_s = flush_timeout_s

    def _write(self, records: Sequence[OutRecord]) -> None:
        errors: list[str] = []

        def delivered(err: Any, msg: Any) -> None:
            if err is not None:
                errors.append(f"{msg.topic()}: {err}")

        for r in records:
            self.producer.produce(r.topic, key=r.key, value=r.value, headers=r.headers or None,
                                  on_delivery=delivered)
            self.producer.poll(0)
        flush_or_fail(self.producer, self.flush_timeout_s)
        if errors:
            raise PublishFailed(f"{len(errors)} of {len(records)} records not written: {errors[0]}")

    def close(self) -> None:
        self.producer.flush(10)


class InMemorySuggestionSink(SuggestionSink):
    """Keeps what it is given: ``records`` in order, and ``waves``, one list per acknowledged wave."""

    def __init__(self, topics: StreamTopics | None = None, *,
                 publish_dead_letter: Callable[[DeadLetter], bool] | None = None) -> None:
        super().__init__(topics or StreamTopics.for_prefix(""), publish_dead_letter=publish_dead_letter)
        self.waves: list[list[OutRecord]] = []
        self._lock = threading.Lock()

    @property
    def records(self) -> list[OutRecord]:
        with self._lock:
            return [r for wave in self.waves for r in wave]

    def _write(self, records: Sequence[OutRecord]) -> None:
        with self._lock:
            self.waves.append(list(records))
