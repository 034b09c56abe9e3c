"""The curation processor: a thin consumer loop around :func:`arttag.curation.fold.apply`.

On start it reads what ``tags.decisions.v1`` holds, rebuilds its state from the first
feedback event on (the state is a projection, kept nowhere else), publishes the artworks
whose decisions differ from what the topic holds, then follows new feedback. One process
reads every partition: contributor weights span all artworks.

After each batch it also writes the rows of the artworks and contributors the batch
touched into the curation database (:mod:`arttag.curation.store`: one upsert statement a
table, of the rows that changed, so the refold at start rewrites nothing that stayed the
same); ``rebuild`` recreates that database from the feedback topic alone.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass

from arttag.curation.feedback import decode_feedback
from arttag.curation.fold import apply, decisions_of
from arttag.curation.rules import CurationRules
from arttag.curation.state import CurationState
from arttag.curation.store import CurationStore
from arttag.errors import ArttagError, EventDecodeError
from arttag.events import TagFeedbackGiven, encode_event
from arttag.kafka import make_producer
from arttag.kafka.clients import consumer, flush_or_fail, from_beginning, read_to_end
from arttag.kafka.dead_letters import RawMessage, make_dead_letter
from arttag.kafka.sink import dead_letter_key
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
    """``store``: the curation database to keep (default: ``settings.curation_database_url``);
    ``publish=False`` folds and writes the database only (a rebuild)."""

    def __init__(self, settings: CurateSettings, store: CurationStore | None = None, *,
                 publish: bool = True) -> None:
        self.settings = settings
        self.store = store if store is not None else CurationStore.open(settings.curation_database_url)
        self.publish = publish
        self.rules = CurationRules.from_settings(settings)
        prefix = settings.kafka.topic_prefix
        self.feedback_topic = topic_name(TAG_FEEDBACK, prefix)
        self.decisions_topic = topic_name(TAG_DECISIONS, prefix)
        self.dead_letter_topic = topic_name(DEAD_LETTERS, prefix)
        self.state = CurationState()
        self.report = CurateReport()
        self._held: dict[str, str] = {}
        self._errors: list[str] = []
        # rows to write after the batch: artworks and contributors the fold touched
        self._dirty_artworks: set[str] = set()
        self._dirty_contributors: set[str] = set()

    def run(self, stop: threading.Event | None = None, until_caught_up: bool = False) -> CurateReport:
        """Rebuild, publish what differs, then follow until ``stop`` (or return once caught up)."""
        if self.publish:
            self._held = published_decisions(self.settings, self.decisions_topic)
            self._producer = make_producer(self.settings.kafka)
        reader = consumer(self.settings.kafka, group=self.settings.curate_group if self.publish else None)
        try:
            pending: set[str] = set()
            # past_end: a record after the end as of the start is already consumed; keep it
            for records in read_to_end(reader, from_beginning(reader, self.feedback_topic),
                                       past_end=True, stop=stop):
                pending |= self._fold(records)
            if not self.publish:
                self.project()
                return self.report
            self._publish(pending)
            self.project()
            self._commit(reader)
            log.info("curate caught up: %d feedback events, %d duplicates, %d dead-lettered, "
                     "%d decisions records published", self.report.feedback_read,
                     self.report.duplicates, self.report.dead_lettered, self.report.published)
            while not until_caught_up and not (stop is not None and stop.is_set()):
                records = [m for m in reader.consume(500, self.settings.poll_s) if not m.error()]
                if records:
                    self._publish(self._fold(records))
                    self.project()
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
                if self.publish:
                    self._dead_letter(msg, exc)
                else:  # the live processor dead-lettered it already
                    self.report.dead_lettered += 1
                continue
            self.report.feedback_read += 1
            if event.event_id in self.state.seen:
                self.report.duplicates += 1
                continue
            changed |= self.fold_event(event)
        return changed

    def fold_event(self, event: TagFeedbackGiven) -> frozenset[str]:
        """The artworks whose decisions ``event`` changed (none for an event id seen before).

        Folds it and notes which database rows it may change: its artwork; the voter,
        or for a curator's word every voter on the tag (confirmed or contradicted now); and
        every artwork a contributor voted on whose weight moved (its counts and consensus);
        ``project()`` writes them.
        """
        if event.event_id in self.state.seen:
            return frozenset()
        tag = self.state.artworks.get(event.artwork_id)
        voters = set(tag.tags[event.tag_id].public) if tag and event.tag_id in tag.tags else set()
        touched = voters if event.actor.kind == "curator" else {event.actor.id}
        before = {c: self.state.weights.get(c) for c in touched}
        _, changed = apply(self.state, event, self.rules)
        self._dirty_artworks.add(event.artwork_id)
        self._dirty_contributors |= touched
        for contributor_id, weight in before.items():
            if self.state.weights.get(contributor_id) != weight:
                self._dirty_artworks |= {a for a, _ in self.state.contributors[contributor_id].voted_on}
        return changed

    def project(self) -> None:
        """Write the database rows the events folded since the last call changed."""
        if not (self._dirty_artworks or self._dirty_contributors):
            return
        self.store.write(self.state, artwork_ids=self._dirty_artworks,
                         contributor_ids=self._dirty_contributors, rules=self.rules)
        self._dirty_artworks, self._dirty_contributors = set(), set()

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
        # the worker's rule: kept whole when it fits in a record, else prefixes and digests
        dead = make_dead_letter(RawMessage(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value()),
                                str(exc), str(exc.context.get("reason", "schema")), CONSUMER_NAME)
        self._producer.produce(self.dead_letter_topic, key=dead_letter_key(msg.key()), value=encode_event(dead),
                               on_delivery=self._delivered)
        self.report.dead_lettered += 1

    def _commit(self, reader) -> None:
        # offsets are for lag monitoring only: a restart rebuilds from the beginning
        try:
            reader.commit(asynchronous=False)
        except Exception as exc:  # noqa: BLE001 - nothing consumed since the last commit, or a rebalance
            log.debug("commit skipped: %s", exc)


def rebuild(settings: CurateSettings, store: CurationStore) -> CurateReport:
    """Drop and recreate the curation database's projection tables from the feedback topic,
    read from the beginning to its end (no group, nothing published, tokens kept)."""
    store.reset()
    return CurateProcessor(settings, store, publish=False).run(until_caught_up=True)
