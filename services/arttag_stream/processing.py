"""The stream's logic as plain functions: decode, version check, suggest, build outputs.

Nothing here knows about faust or Kafka clients; the worker, ``arttag replay``
and the tests hand it :class:`RawMessage` batches and publish what it returns.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from arttag import limits
from arttag.catalogue.text import content_hash
from arttag.errors import ArttagError, ConfigurationError, EventDecodeError
from arttag.events import (
    ArtworkCreated,
    ArtworkMetadata,
    ArtworkUpdated,
    DeadLetter,
    TagSuggestionsPublished,
    decode_artwork_event,
    encode_event,
)
from arttag.kafka.dead_letters import RawMessage, bounded_text, make_dead_letter, record_size
from arttag.kafka.follower import LatestTable
from arttag.kafka.sink import suggestion_headers, suggestion_key
from arttag.model.tagger import Prefetching, SuggestOptions, Tagger
from arttag.quality.auto_apply import mark_auto_apply, threshold_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArtworkState:
    """What the worker last answered for an artwork (the latest-suggestions topic holds it).

    ``produced_at`` is None for states read from record headers and for the worker's own
    claims: the merge rule then compares revisions only (:func:`arttag.kafka.follower.supersedes`).
    """

    revision: int
    content_hash: str
    model_version: str
    produced_at: datetime | None = None


class StateStore(LatestTable[ArtworkState]):
    """Per-artwork state: the last revision answered, its content hash and model version.

    Rebuilt at start-up from the compacted latest-suggestions topic and kept up to
    date by the worker's own writes (and, in a group of workers, by following the
    topic), under the topic's one merge rule: an older revision never wins.
    Thread-safe: the follower thread and the event loop both write.
    """


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
    """What one batch produced; the caller publishes ``suggestions`` (history), then ``latest``.

    Every message of the batch is in exactly one of ``suggestions``, ``dead_letters``
    and ``skipped``. Each output's bytes are encoded once, here: :meth:`value`.
    """

    suggestions: list[tuple[RawMessage, TagSuggestionsPublished]] = field(default_factory=list)
    latest: list[TagSuggestionsPublished] = field(default_factory=list)
    dead_letters: list[tuple[RawMessage, DeadLetter]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    artworks: list[ArtworkMetadata] = field(default_factory=list)
    """Every artwork decoded in the batch (for data-quality monitoring)."""
    encode_score_s: float = 0.0
    process_s: float = 0.0
    """Seconds processing (decoding, the tagger, building and encoding the events)."""
    publish_s: float = 0.0
    """Seconds from sending the batch's records to Kafka's acknowledgement of the last (set by the publisher)."""
    journal_s: float = 0.0
    """Seconds writing and clearing the crash journal (set by :func:`arttag_stream.pipeline.process_batch`)."""
    suggested: int = 0
    encoded: dict[int, bytes] = field(default_factory=dict, repr=False)

    def value(self, event: TagSuggestionsPublished | DeadLetter) -> bytes:
        """The record value of one of this result's outputs."""
        raw = self.encoded.get(id(event))
        if raw is None:
            raw = self.encoded[id(event)] = encode_event(event)
        return raw

    def extend(self, other: BatchResult) -> None:
        self.suggestions += other.suggestions
        self.latest += other.latest
        self.dead_letters += other.dead_letters
        self.skipped += other.skipped
        self.artworks += other.artworks
        self.encode_score_s += other.encode_score_s
        self.process_s += other.process_s
        self.suggested += other.suggested
        self.encoded.update(other.encoded)


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

    Whatever the bytes, each message ends as a suggestion, a dead letter with a
    reason, or a skip (unchanged content, duplicate in the batch); errors of the
    processing itself are dead-lettered (``internal``), not raised. No output
    record exceeds ``max_record_bytes``.
    """

    def __init__(
        self,
        tagger: Tagger,
        store: StateStore,
        *,
        consumer: str,
        options: SuggestOptions | None = None,
        model_version: str | None = None,
        max_record_bytes: int = limits.DEFAULT_MAX_RECORD_BYTES,
        auto_apply_precision: float | None = None,
        rejected: Callable[[str, ArtworkMetadata], set[str]] | None = None,
    ) -> None:
        self.rejected = rejected
        """``rejected(artwork id, artwork)``: tag ids not to suggest for it as it is now (curators'
        rejections, :meth:`arttag.curation.learning.OnlineLearner.rejected_tags`)."""
        # (tagger, label) as one reference: a batch reads it once, so a swap between batches
        # never splits one batch over two models or labels one model's output with another's name
        self._serving = (tagger, model_version or tagger.model_version)
        self.store = store
        self.consumer = consumer
        self.options = options or SuggestOptions()
        self.max_record_bytes = max_record_bytes
        self.auto_apply_precision = auto_apply_precision
        # Checked at start-up: a worker asked to mark tags safe to apply must not start on a
        # bundle that cannot say which are (ConfigurationError).
        self._auto_apply = (tagger, self._auto_apply_threshold(tagger))

    def dead_letter(
        self, message: RawMessage, error: str, error_type: str, attempts: int | None = None,
        keep_whole: bool = True,
    ) -> DeadLetter:
        return make_dead_letter(message, error, error_type, self.consumer,
                                max_record_bytes=self.max_record_bytes, attempts=attempts,
                                keep_whole=keep_whole)

    def give_up(self, messages: Sequence[RawMessage], attempts: int, *, keep_whole: bool = True) -> BatchResult:
        """Dead letters for messages whose processing began ``attempts`` times and never finished
        (``keep_whole=False``: holding only the originals' first bytes)."""
        result = BatchResult()
        for message in messages:
            result.dead_letters.append((message, self.dead_letter(
                message, f"processing began {attempts} times without finishing "
                "(the worker crashed or was killed each time, or the broker refused its output); "
                "not tried again",
                "repeated-failure", attempts=attempts, keep_whole=keep_whole)))
        return result

    @property
    def tagger(self) -> Tagger:
        return self._serving[0]

    @property
    def model_version(self) -> str:
        return self._serving[1]

    def use(self, tagger: Tagger) -> None:
        """Serve the next batches with ``tagger``, labelled with its own model version (hot reload)."""
        try:
            threshold = self._auto_apply_threshold(tagger)
        except ConfigurationError as exc:
            log.error("model %s serves without marking auto-apply suggestions: %s", tagger.model_version, exc)
            threshold = None
        self._auto_apply = (tagger, threshold)
        self._serving = (tagger, tagger.model_version)

    def _auto_apply_threshold(self, tagger: Tagger) -> float | None:
        if self.auto_apply_precision is None:
            return None
        manifest = getattr(tagger, "manifest", None)
        if manifest is None:
            raise ConfigurationError(f"auto_apply_precision is set but model {tagger.model_version} "
                                     "has no bundle manifest with auto-apply thresholds")
        return threshold_for(manifest, self.auto_apply_precision)

    def prefetch(self, messages: Sequence[RawMessage]) -> int:
        """Encode ahead what :meth:`process` will ask the tagger for (another thread, while the
        batch before is processed); how many texts were encoded. Reads the state without
        claiming anything: an event found unchanged meanwhile only costs its encoding, and one
        left out here is encoded by :meth:`process`. Never raises: :meth:`process` meets the
        same message and turns what fails into a dead letter."""
        tagger, model_version = self._serving
        if not isinstance(tagger, Prefetching):
            return 0
        artworks = []
        for message in messages:
            try:
                event = decode_artwork_event(message.value)
            except Exception:  # noqa: BLE001 - a dead letter, found again by process()
                continue
            state = self.store.get(event.artwork_id)
            if decide(state, event.revision, content_hash(event.artwork), model_version) != "unchanged":
                artworks.append(event.artwork)
        try:
            return tagger.prefetch(artworks) if artworks else 0
        except Exception as exc:  # noqa: BLE001 - process() encodes them again, one by one if need be
            log.debug("prefetch of %d artworks failed: %s", len(artworks), exc)
            return 0

    def process(self, messages: Sequence[RawMessage]) -> BatchResult:
        started = time.perf_counter()
        tagger, model_version = self._serving
        result = BatchResult()
        pending: list[_Pending] = []
        seen: set[tuple[str, int, str]] = set()
        for message in messages:
            try:
                self._admit(message, model_version, result, pending, seen)
            except Exception as exc:  # noqa: BLE001 - a message must never stop the batch
                log.exception("unexpected error on %s", message.where)
                result.dead_letters.append((message, self.dead_letter(
                    message, f"{type(exc).__name__}: {exc}", "internal")))
        if pending:
            self._suggest(tagger, model_version, pending, result)
        for _, dead in result.dead_letters:
            result.value(dead)  # encoded in this (the tagger's) thread, not the event loop's
        result.process_s = time.perf_counter() - started
        return result

    def _admit(self, message: RawMessage, model_version: str, result: BatchResult, pending: list[_Pending],
               seen: set[tuple[str, int, str]]) -> None:
        """Decode one message and decide whether it goes to the tagger."""
        try:
            event = decode_artwork_event(message.value)
        except EventDecodeError as exc:
            reason = str(exc.context.get("reason", "schema"))
            log.debug("undecodable %s: %s", message.where, bounded_text(str(exc), 200))
            result.dead_letters.append((message, self.dead_letter(message, str(exc), reason)))
            return
        chash = content_hash(event.artwork)
        result.artworks.append(event.artwork)
        if (event.artwork_id, event.revision, chash) in seen:
            result.skipped.append(
                Skipped(message, event.artwork_id, event.revision, "duplicate in batch")
            )
            return
        seen.add((event.artwork_id, event.revision, chash))
        state = self.store.get(event.artwork_id)
        decision = decide(state, event.revision, chash, model_version)
        if decision == "unchanged":
            log.debug("artwork %s rev %d at %s unchanged, no new suggestion",
                      event.artwork_id, event.revision, message.where)
            result.skipped.append(
                Skipped(message, event.artwork_id, event.revision, "content unchanged")
            )
            return
        if decision == "new":
            # Claim the revision now so later events of this batch see it.
            self.store.merge(
                event.artwork_id, ArtworkState(event.revision, chash, model_version)
            )
        pending.append(_Pending(message, event, chash, decision, state))

    def _suggest(self, tagger: Tagger, model_version: str, pending: list[_Pending],
                 result: BatchResult) -> None:
        started = time.perf_counter()
        leave_out = [self.rejected(p.event.artwork_id, p.event.artwork) if self.rejected else set() for p in pending]
        # ask for as many more as may be left out, so a rejection never shortens the answer
        extra = max((len(x) for x in leave_out), default=0)
        options = (self.options.model_copy(update={"limit": min(self.options.limit + extra, 200)})
                   if extra else self.options)
        try:
            answers: list[list] | None = tagger.suggest(
                [p.event.artwork for p in pending], options
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
                    [one] = tagger.suggest([p.event.artwork], options)
                    answers.append(one)
                except Exception as exc:  # noqa: BLE001 - a model failure becomes a dead letter
                    log.debug("artwork %s at %s: model failed: %s",
                                p.event.artwork_id, p.message.where, exc)
                    errors[i] = f"model could not process artwork {p.event.artwork_id}: {type(exc).__name__}: {exc}"
                    answers.append(None)
        result.encode_score_s += time.perf_counter() - started
        marked_by, threshold = self._auto_apply
        threshold = threshold if marked_by is tagger else None
        for i, (p, tags) in enumerate(zip(pending, answers)):
            if tags is None:
                self._fail(p, result, errors[i], "model")
                continue
            if extra:
                tags = [t for t in tags if t.tag_id not in leave_out[i]][: self.options.limit]
            tags = mark_auto_apply(tags, threshold)
            try:
                event = TagSuggestionsPublished(
                    suggestion_id=TagSuggestionsPublished.make_id(
                        p.event.artwork_id, p.event.revision, p.chash, model_version, tags
                    ),
                    artwork_id=p.event.artwork_id,
                    revision=p.event.revision,
                    content_hash=p.chash,
                    model_version=model_version,
                    source_event_id=p.event.event_id,
                    suggestions=tags,
                )
                value = result.value(event)
                size = record_size(suggestion_key(event), value, suggestion_headers(event))
            except Exception as exc:  # noqa: BLE001 - an answer we cannot publish is a dead letter
                log.exception("artwork %s at %s: suggestion not built", p.event.artwork_id, p.message.where)
                self._fail(p, result, f"suggestion for artwork {p.event.artwork_id} not built: "
                           f"{type(exc).__name__}: {exc}", "internal")
                continue
            if size > self.max_record_bytes:
                result.encoded.pop(id(event), None)
                self._fail(p, result, f"the suggestion record for artwork {p.event.artwork_id} "
                           f"would be {size} bytes; records are at most {self.max_record_bytes}",
                           "output_too_large")
                continue
            result.suggested += 1
            result.suggestions.append((p.message, event))
            if p.decision == "new":
                result.latest.append(event)
            log.debug("artwork %s rev %d at %s: %d tags (%s)", p.event.artwork_id,
                      p.event.revision, p.message.where, len(tags), p.decision)

    def _fail(self, p: _Pending, result: BatchResult, error: str, error_type: str) -> None:
        if p.decision == "new":
            self.store.restore(p.event.artwork_id, p.previous)  # not answered: not claimed
        result.dead_letters.append((p.message, self.dead_letter(p.message, error, error_type)))
