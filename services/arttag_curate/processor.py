"""The curation processor: a thin consumer loop around :func:`arttag.curation.fold.apply`.

On start it reads what ``tags.decisions.v1`` holds, rebuilds its state from the first
feedback event on (the state is a projection, kept nowhere else), publishes the artworks
whose decisions differ from what the topic holds, then follows new feedback. One process
reads every partition: contributor weights span all artworks.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass

from arttag import limits
from arttag.curation.feedback import decode_feedback
from arttag.curation.fold import apply, decisions_of
from arttag.curation.rules import CurationRules
from arttag.curation.state import CurationState
from arttag.errors import ArttagError, EventDecodeError
from arttag.events import DeadLetter, encode_event
from arttag.kafka import make_producer
from arttag.kafka.clients import consumer, flush_or_fail, from_beginning, read_to_end
from arttag.kafka.topics import DEAD_LETTERS, TAG_DECISIONS, TAG_FEEDBACK, topic_name
from arttag.settings import CurateSettings
from confluent_kafka import Message

log = logging.getLogger(__name__)

CONSUMER_NAME = "arttag-curate"


@dataclass
class CurateReport:
    feedback_read: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    published: int = 0


def published_decisions(settings: CurateSettings, topic: str) -> dict[str, str]:
    """artwork id -> decisions id, as the decisions topic holds them now."""
    reader = consumer(settings.kafka)
    held: dict[str, str] = {}
    try:
        for records in read_to_end(reader, from_beginning(reader, topic)):
            for msg in records:
                if msg.key() is None or msg.value() is None:
                    continue
                try:
                    held[msg.key().decode("utf-8")] = json.loads(msg.value())["decisions_id"]
                except (ValueError, KeyError, TypeError):
                    continue  # not ours: republishing the artwork's record replaces it
    finally:
        reader.close()
    return held


class CurateProcessor:
    def __init__(self, settings: CurateSettings) -> None:
        self.settings = settings
        self.rules = CurationRules.from_settings(settings)
        prefix = settings.kafka.topic_prefix
        self.feedback_topic = topic_name(TAG_FEEDBACK, prefix)
        self.decisions_topic = topic_name(TAG_DECISIONS, prefix)
        self.dead_letter_topic = topic_name(DEAD_LETTERS, prefix)
        self.state = CurationState()
        self.report = CurateReport()
        self._held: dict[str, str] = {}
        self._errors: list[str] = []

    def run(self, stop: threading.Event | None = None, until_caught_up: bool = False) -> CurateReport:
        """Rebuild, publish what differs, then follow until ``stop`` (or return once caught up)."""
        self._held = published_decisions(self.settings, self.decisions_topic)
        self._producer = make_producer(self.settings.kafka)
        reader = consumer(self.settings.kafka, group=self.settings.curate_group)
        try:
            pending: set[str] = set()
            # past_end: a record after the end as of the start is already consumed; keep it
            for records in read_to_end(reader, from_beginning(reader, self.feedback_topic),
                                       past_end=True, stop=stop):
                pending |= self._fold(records)
            self._publish(pending)
            self._commit(reader)
            log.info("curate caught up: %d feedback events, %d duplicates, %d dead-lettered, "
                     "%d decisions records published", self.report.feedback_read,
                     self.report.duplicates, self.report.dead_lettered, self.report.published)
            while not until_caught_up and not (stop is not None and stop.is_set()):
                records = [m for m in reader.consume(500, self.settings.poll_s) if not m.error()]
                if records:
                    self._publish(self._fold(records))
                    self._commit(reader)
        finally:
            reader.close()
        return self.report

    def _fold(self, records: list[Message]) -> set[str]:
        changed: set[str] = set()
        for msg in records:
            try:
                event = decode_feedback(msg.value())
            except EventDecodeError as exc:
                self._dead_letter(msg, exc)
                continue
            self.report.feedback_read += 1
            if event.event_id in self.state.seen:
                self.report.duplicates += 1
                continue
            _, now = apply(self.state, event, self.rules)
            changed |= now
        return changed

    def _publish(self, artwork_ids: set[str]) -> None:
        for artwork_id in sorted(artwork_ids):
            record = decisions_of(self.state, artwork_id, self.rules)
            if self._held.get(artwork_id) == record.decisions_id:
                continue
            self._producer.produce(self.decisions_topic, key=artwork_id.encode("utf-8"),
                                   value=encode_event(record), on_delivery=self._delivered)
            self._held[artwork_id] = record.decisions_id
            self.report.published += 1
        flush_or_fail(self._producer)
        if self._errors:
            raise ArttagError(f"decisions not written: {self._errors[0]}", topic=self.decisions_topic)

    def _delivered(self, err, msg) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err}")

    def _dead_letter(self, msg: Message, exc: EventDecodeError) -> None:
        log.warning("feedback %s[%d]@%d dead-lettered: %s", msg.topic(), msg.partition(),
                    msg.offset(), exc)
        value = msg.value()
        # base64 grows a value by a third: one near the event limit is kept as a prefix
        keep_whole = value is None or len(value) * 4 // 3 + 4096 <= limits.DEFAULT_MAX_RECORD_BYTES
        dead = DeadLetter.for_message(
            value, msg.key(), keep_whole=keep_whole, topic=msg.topic(), partition=msg.partition(), offset=msg.offset(),
            error=str(exc), error_type=str(exc.context.get("reason", "schema")), consumer=CONSUMER_NAME,
        )
        self._producer.produce(self.dead_letter_topic, key=msg.key(), value=encode_event(dead),
                               on_delivery=self._delivered)
        self.report.dead_lettered += 1

    def _commit(self, reader) -> None:
        # offsets are for lag monitoring only: a restart rebuilds from the beginning
        try:
            reader.commit(asynchronous=False)
        except Exception as exc:  # noqa: BLE001 - nothing consumed since the last commit, or a rebalance
            log.debug("commit skipped: %s", exc)
