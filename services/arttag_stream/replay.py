"""Re-processing: the artwork topics under a new model version, and dead letters after a fix.

Both are finite jobs: they read up to the partitions' ends as of their start,
with their own consumer group, so the running worker is left alone.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

from arttag.events import DeadLetter
from arttag.kafka import make_producer
from arttag.kafka.clients import consumer, flush_or_fail, partitions, read_to_end
from arttag.kafka.sink import (
    ConfluentSuggestionSink,
    InMemorySuggestionSink,
    SuggestionSink,
)
from arttag.kafka.topics import StreamTopics
from arttag.model.tagger import SuggestOptions, Tagger
from arttag.settings import StreamSettings
from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition
from tqdm import tqdm

from arttag_stream.attempts import CrashGuard
from arttag_stream.pipeline import tag_and_publish
from arttag_stream.processing import BatchProcessor, RawMessage, StateStore
from arttag_stream.state import LatestFollower

log = logging.getLogger(__name__)


@dataclass
class ReplayReport:
    read: int = 0
    suggestions: int = 0
    latest: int = 0
    dead_letters: int = 0
    invalid: int = 0
    skipped: int = 0
    elapsed_s: float = 0.0
    group: str = ""
    errors: list[str] = field(default_factory=list)
    dry_run: bool = False


REPLAYED_DEAD_LETTERS = frozenset({"model", "output_too_large", "internal"})
"""What a replay dead-letters: failures of this model version. Undecodable messages were
dead-lettered when the worker first met them; only these are news."""


def _start_offsets(c, topic: str, parts: list[int], since: datetime | None) -> list[TopicPartition]:
    if since is None:
        return [TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts]
    ms = int(since.timestamp() * 1000)
    found = c.offsets_for_times([TopicPartition(topic, p, ms) for p in parts], timeout=30)
    # -1: no message at or after the time: start at the end (nothing to replay there).
    return [TopicPartition(topic, tp.partition, tp.offset) for tp in found]


def _commit(c) -> None:
    try:
        c.commit(asynchronous=False)
    except KafkaException as exc:  # nothing consumed yet: nothing to commit
        log.debug("commit skipped: %s", exc)


def replay_artworks(
    settings: StreamSettings,
    tagger: Tagger,
    *,
    model_version: str | None = None,
    since: datetime | None = None,
    group: str | None = None,
    progress: bool = True,
    sink: SuggestionSink | None = None,
    dry_run: bool = False,
) -> ReplayReport:
    """Suggestions for every artwork event (or those since ``since``) under ``model_version``.

    The state is read from the latest-suggestions topic first, so revisions
    this model version already answered are skipped: a replay that stops half
    way can simply be run again. Messages that cannot be decoded are counted
    (the worker dead-lettered them already); artworks this model fails on are
    dead-lettered. Each batch goes through :func:`arttag_stream.pipeline.tag_and_publish`,
    as in the worker; ``dry_run`` publishes to an :class:`InMemorySuggestionSink` (or
    ``sink``) and commits nothing.
    """
    model_version = model_version or tagger.model_version
    topics = StreamTopics.for_prefix(settings.kafka.topic_prefix)
    group = group or f"{settings.consumer_group}-replay-{model_version}"
    report = ReplayReport(group=group, dry_run=dry_run)
    store = StateStore()
    follower = LatestFollower(settings.kafka, topics.latest, store)
    try:
        follower.load()
    finally:
        follower.close()
    processor = BatchProcessor(tagger, store, consumer=group, model_version=model_version,
                               options=SuggestOptions(limit=settings.suggestion_limit),
                               max_record_bytes=settings.max_record_bytes)
    guard = CrashGuard(None, 0, processor)  # a finite job: a crash is rerun by hand
    keep = REPLAYED_DEAD_LETTERS.__contains__
    if sink is None:
        sink = (InMemorySuggestionSink(topics, publish_dead_letter=lambda d: keep(d.error_type)) if dry_run
                else ConfluentSuggestionSink(make_producer(settings.kafka), topics,
                                             publish_dead_letter=lambda d: keep(d.error_type)))
    c = consumer(settings.kafka, group)
    started = time.monotonic()
    try:
        tps: list[TopicPartition] = []
        for topic in (topics.created, topics.updated):
            tps += _start_offsets(c, topic, partitions(c, topic), since)
        bar = tqdm(desc=f"replay as {model_version}", unit=" events", disable=not progress)
        for records in read_to_end(c, tps, max_messages=settings.batch_max_events,
                                   poll_s=settings.batch_max_ms / 1000):
            batch = []
            for msg in records:
                ts = msg.timestamp()[1]
                batch.append(RawMessage(msg.topic(), msg.partition(), msg.offset(), msg.key(),
                                        msg.value(), ts if ts > 0 else None))
            result = tag_and_publish(guard, batch, sink)
            if not dry_run:
                _commit(c)  # the group's offsets show the replay's progress
            report.read += len(batch)
            report.suggestions += len(result.suggestions)
            report.latest += len(result.latest)
            report.skipped += len(result.skipped)
            replayed = sum(keep(d.error_type) for _, d in result.dead_letters)
            report.dead_letters += replayed
            report.invalid += len(result.dead_letters) - replayed
            bar.update(len(batch))
        bar.close()
    finally:
        c.close()
        sink.close()
    report.elapsed_s = time.monotonic() - started
    log.info("replay read %d events as %s%s", report.read, model_version, " (dry run)" if dry_run else "")
    return report


@dataclass
class DeadLetterReplayReport:
    resubmitted: int = 0
    unreadable: int = 0
    unavailable: int = 0
    """Shortened dead letters whose original is gone from its topic (retention) or differs."""
    by_topic: dict[str, int] = field(default_factory=dict)


def replay_dead_letters(
    settings: StreamSettings,
    *,
    group: str | None = None,
    only_topic: str | None = None,
    dry_run: bool = False,
) -> DeadLetterReplayReport:
    """Re-submit each dead letter's original key and bytes to its original topic, once.

    The dead-letter group's committed offsets remember what was re-submitted;
    a message that fails again comes back as a new dead letter.
    """
    topics = StreamTopics.for_prefix(settings.kafka.topic_prefix)
    group = group or f"{settings.consumer_group}-deadletter-replay"
    report = DeadLetterReplayReport()
    c = consumer(settings.kafka, group)
    p = make_producer(settings.kafka)
    try:
        parts = partitions(c, topics.dead_letters)
        committed = c.committed([TopicPartition(topics.dead_letters, q) for q in parts], timeout=30)
        tps = [TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
               for tp in committed]
        for records in read_to_end(c, tps, poll_s=1.0):
            for msg in records:
                try:
                    # extra="ignore": a newer worker of the same version may add an optional field
                    dead = DeadLetter.model_validate_json(msg.value(), extra="ignore")
                except Exception as exc:  # noqa: BLE001 - a foreign record in the topic
                    log.warning("%s[%d]@%d is not a dead letter: %s", msg.topic(), msg.partition(),
                                msg.offset(), exc)
                    report.unreadable += 1
                    continue
                if only_topic and dead.topic != only_topic:
                    continue
                key_value = (dead.original_key(), dead.original_value())
                if dead.truncated:  # only a prefix is kept: the original is read from its topic
                    found = fetch_original(settings, dead)
                    if found is None:
                        log.warning("%s[%d]@%d: the original is no longer in its topic, or differs; "
                                    "not re-submitted", dead.topic, dead.partition, dead.offset)
                        report.unavailable += 1
                        continue
                    key_value = found
                if not dry_run:
                    p.produce(dead.topic, key=key_value[0], value=key_value[1])
                report.resubmitted += 1
                report.by_topic[dead.topic] = report.by_topic.get(dead.topic, 0) + 1
                log.info("re-submitted %s[%d]@%d (%s) to %s", dead.topic, dead.partition,
                         dead.offset, dead.error_type, dead.topic)
        flush_or_fail(p)
        if not dry_run:
            _commit(c)
    finally:
        c.close()
    return report


def fetch_original(settings: StreamSettings, dead: DeadLetter,
                   timeout_s: float = 30.0) -> tuple[bytes | None, bytes | None] | None:
    """The key and value a shortened dead letter came from, read from its source offset;
    None when retention removed it or its sha256 does not match."""
    c = consumer(settings.kafka)
    try:
        c.assign([TopicPartition(dead.topic, dead.partition, dead.offset)])
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            msg = c.poll(1.0)
            if msg is None or msg.error():
                continue
            if msg.offset() != dead.offset:
                return None  # compacted or deleted: the log went on past it
            key, value = msg.key(), msg.value()
            if (value is not None and dead.original_value_sha256
                    and hashlib.sha256(value).hexdigest() != dead.original_value_sha256):
                return None
            return key, value
        return None
    finally:
        c.close()
