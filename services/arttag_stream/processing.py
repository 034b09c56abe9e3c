"""The stream's logic as plain functions: decode, version check, suggest, build outputs.

Nothing here knows about faust or Kafka clients; the worker, ``arttag replay``
and the tests hand it :class:`RawMessage` batches and publish what it returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from arttag.errors import ArttagError, EventDecodeError
from arttag.events import (
    ArtworkCreated,
    ArtworkMetadata,
    ArtworkUpdated,
    DeadLetter,
    TagSuggestionsPublished,
    decode_artwork_event,
)
from arttag.tagger import SuggestOptions, Tagger
from arttag.text import content_hash

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawMessage:
    """One consumed Kafka record, as bytes, with where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


@dataclass(frozen=True)
class ArtworkState:
    """What the worker last answered for an artwork (the latest-suggestions topic holds it)."""

    revision: int
    content_hash: str
    model_version: str


class StateStore:
    """Per-artwork state: the last revision answered, its content hash and model version.

    Rebuilt at start-up from the compacted latest-suggestions topic and kept up to
    date by the worker's own writes (and, in a group of workers, by following the
    topic). Merging keeps the highest revision, so an older one never wins.
    Thread-safe: the follower thread and the event loop both write.
    """

    def __init__(self) -> None:
        self._states: dict[str, ArtworkState] = {}
        self._lock = threading.Lock()

    def get(self, artwork_id: str) -> ArtworkState | None:
        with self._lock:
            return self._states.get(artwork_id)

    def merge(self, artwork_id: str, state: ArtworkState) -> bool:
        """Keep ``state`` unless a higher revision is known; True when it was kept."""
        with self._lock:
            current = self._states.get(artwork_id)
            if current is not None and current.revision > state.revision:
                return False
            self._states[artwork_id] = state
            return True

    def restore(self, artwork_id: str, previous: ArtworkState | None) -> None:
        """Undo a claim whose suggestion never came (the model failed on it)."""
        with self._lock:
            if previous is None:
                self._states.pop(artwork_id, None)
            else:
                self._states[artwork_id] = previous

    def merge_published(self, event: TagSuggestionsPublished) -> bool:
        return self.merge(
            event.artwork_id, ArtworkState(event.revision, event.content_hash, event.model_version)
        )

    def __len__(self) -> int:
        with self._lock:
            return len(self._states)


Decision = Literal["new", "stale", "unchanged"]


def decide(state: ArtworkState | None, revision: int, chash: str, model_version: str) -> Decision:
    """What to do with an artwork revision given the state answered so far.

    - ``unchanged``: same content and model as answered, at this or an older revision: no output;
    - ``stale``: an older revision with other content: a suggestion for the history topic only,
      the latest-suggestions topic keeps the newer revision;
    - ``new``: suggest and publish to both topics.
    """
    if state is None:
        return "new"
    if state.content_hash == chash and state.model_version == model_version:
        return "unchanged"
    if revision < state.revision:
        return "stale"
    return "new"


@dataclass
class Skipped:
    message: RawMessage
    artwork_id: str
    revision: int
    reason: str


@dataclass
class BatchResult:
    """What one batch produced; the caller publishes ``suggestions`` (history), then ``latest``."""

    suggestions: list[tuple[RawMessage, TagSuggestionsPublished]] = field(default_factory=list)
    latest: list[TagSuggestionsPublished] = field(default_factory=list)
    dead_letters: list[tuple[RawMessage, DeadLetter]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    artworks: list[ArtworkMetadata] = field(default_factory=list)
    """Every artwork decoded in the batch (for data-quality monitoring)."""
    encode_score_s: float = 0.0
    suggested: int = 0


def make_dead_letter(
    message: RawMessage, error: str, error_type: str, consumer: str
) -> DeadLetter:
    return DeadLetter(
        original_value_b64=DeadLetter.encode_bytes(message.value),
        original_key_b64=DeadLetter.encode_bytes(message.key),
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        error=error,
        error_type=error_type,
        consumer=consumer,
    )


@dataclass
class _Pending:
    message: RawMessage
    event: ArtworkCreated | ArtworkUpdated
    chash: str
    decision: Decision
    previous: ArtworkState | None


class BatchProcessor:
    """Turns a batch of raw artwork messages into suggestions, latest updates and dead letters.

    The tagger sees the whole batch at once (the encoder and scorers work on
    batches); if it fails on the batch, each artwork is retried alone so one
    artwork the model cannot process is dead-lettered and the others go through.

    Example::

        processor = BatchProcessor(tagger, StateStore(), consumer="arttag-stream")
        result = processor.process([RawMessage("artworks.created.v1", 0, 42, b"T1", raw)])
    """

    def __init__(
        self,
        tagger: Tagger,
        store: StateStore,
        *,
        consumer: str,
        options: SuggestOptions | None = None,
        model_version: str | None = None,
    ) -> None:
        self.tagger = tagger
        self.store = store
        self.consumer = consumer
        self.options = options or SuggestOptions()
        self.model_version = model_version or tagger.model_version

    def process(self, messages: Sequence[RawMessage]) -> BatchResult:
        result = BatchResult()
        pending: list[_Pending] = []
        seen: set[tuple[str, int, str]] = set()
        for message in messages:
            try:
                event = decode_artwork_event(message.value)
            except EventDecodeError as exc:
                reason = str(exc.context.get("reason", "schema"))
                log.debug("undecodable %s: %s", message.where, exc)
                result.dead_letters.append(
                    (message, make_dead_letter(message, str(exc), reason, self.consumer))
                )
                continue
            result.artworks.append(event.artwork)
            chash = content_hash(event.artwork)
            if (event.artwork_id, event.revision, chash) in seen:
                result.skipped.append(
                    Skipped(message, event.artwork_id, event.revision, "duplicate in batch")
                )
                continue
            seen.add((event.artwork_id, event.revision, chash))
            state = self.store.get(event.artwork_id)
            decision = decide(state, event.revision, chash, self.model_version)
            if decision == "unchanged":
                log.debug("artwork %s rev %d at %s unchanged, no new suggestion",
                          event.artwork_id, event.revision, message.where)
                result.skipped.append(
                    Skipped(message, event.artwork_id, event.revision, "content unchanged")
                )
                continue
            if decision == "new":
                # Claim the revision now so later events of this batch see it.
                self.store.merge(
                    event.artwork_id, ArtworkState(event.revision, chash, self.model_version)
                )
            pending.append(_Pending(message, event, chash, decision, state))
        if pending:
            self._suggest(pending, result)
        return result

    def _suggest(self, pending: list[_Pending], result: BatchResult) -> None:
        started = time.perf_counter()
        try:
            answers: list[list] | None = self.tagger.suggest(
                [p.event.artwork for p in pending], self.options
            )
            if len(answers) != len(pending):
                raise ArttagError(f"tagger answered {len(answers)} of {len(pending)} artworks")
        except Exception as exc:  # noqa: BLE001 - isolate the artwork that breaks the model
            log.warning("tagger failed on a batch of %d (%s); retrying one by one", len(pending), exc)
            answers = None
        errors: dict[int, str] = {}
        if answers is None:
            answers = []
            for i, p in enumerate(pending):
                try:
                    [one] = self.tagger.suggest([p.event.artwork], self.options)
                    answers.append(one)
                except Exception as exc:  # noqa: BLE001 - a model failure becomes a dead letter
                    log.debug("artwork %s at %s: model failed: %s",
                                p.event.artwork_id, p.message.where, exc)
                    errors[i] = f"model could not process artwork {p.event.artwork_id}: {type(exc).__name__}: {exc}"
                    answers.append(None)
        result.encode_score_s += time.perf_counter() - started
        for i, (p, tags) in enumerate(zip(pending, answers)):
            if tags is None:
                if p.decision == "new":
                    self.store.restore(p.event.artwork_id, p.previous)
                result.dead_letters.append(
                    (p.message, make_dead_letter(p.message, errors[i], "model", self.consumer))
                )
                continue
            event = TagSuggestionsPublished(
                suggestion_id=TagSuggestionsPublished.make_id(
                    p.event.artwork_id, p.event.revision, p.chash, self.model_version
                ),
                artwork_id=p.event.artwork_id,
                revision=p.event.revision,
                content_hash=p.chash,
                model_version=self.model_version,
                source_event_id=p.event.event_id,
                suggestions=tags,
            )
            result.suggested += 1
            result.suggestions.append((p.message, event))
            if p.decision == "new":
                result.latest.append(event)
            log.debug("artwork %s rev %d at %s: %d tags (%s)", p.event.artwork_id,
                      p.event.revision, p.message.where, len(tags), p.decision)
