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

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, KafkaException, TopicPartition
from tqdm import tqdm

from arttag.events import DeadLetter, encode_event
from arttag.kafka import make_producer
from arttag.settings import StreamSettings
from arttag.tagger import SuggestOptions, Tagger

from arttag_stream.app import StreamTopics
from arttag_stream.kafka_io import consumer, flush_or_fail, partitions
from arttag_stream.processing import BatchProcessor, RawMessage, StateStore, dead_letter_key
from arttag_stream.state import LatestFollower, state_headers

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


def _start_offsets(c, topic: str, parts: list[int], since: datetime | None) -> list[TopicPartition]:
    if since is None:
        return [TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts]
    ms = int(since.timestamp() * 1000)
    found = c.offsets_for_times([TopicPartition(topic, p, ms) for p in parts], timeout=30)
    # -1: no message at or after the time: start at the end (nothing to replay there).
    return [TopicPartition(topic, tp.partition, tp.offset) for tp in found]


def _ends(c, tps: list[TopicPartition]) -> dict[tuple[str, int], int]:
    """Where each partition ends now, for the partitions with something to read from the start."""
    ends = {}
    for tp in tps:
        low, high = c.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=30)
        if tp.offset == OFFSET_BEGINNING:
            start = low
        elif tp.offset == OFFSET_END:
            start = high
        else:
            start = max(tp.offset, low)
        if high > start:
            ends[(tp.topic, tp.partition)] = high
    return ends


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
) -> ReplayReport:
    """Suggestions for every artwork event (or those since ``since``) under ``model_version``.

    The state is read from the latest-suggestions topic first, so revisions
    this model version already answered are skipped: a replay that stops half
    way can simply be run again. Messages that cannot be decoded are counted
    (the worker dead-lettered them already); artworks this model fails on are
    dead-lettered.
    """
    model_version = model_version or tagger.model_version
    topics = StreamTopics.for_prefix(settings.kafka.topic_prefix)
    group = group or f"{settings.consumer_group}-replay-{model_version}"
    report = ReplayReport(group=group)
    store = StateStore()
    follower = LatestFollower(settings.kafka, topics.latest, store)
    try:
        follower.load()
    finally:
        follower.close()
    processor = BatchProcessor(tagger, store, consumer=group, model_version=model_version,
                               options=SuggestOptions(limit=settings.suggestion_limit),
                               max_record_bytes=settings.max_record_bytes)
    c = consumer(settings.kafka, group)
    p = make_producer(settings.kafka)
    started = time.monotonic()
    try:
        tps: list[TopicPartition] = []
        for topic in (topics.created, topics.updated):
            tps += _start_offsets(c, topic, partitions(c, topic), since)
        ends = _ends(c, tps)
        c.assign(tps)
        bar = tqdm(desc=f"replay as {model_version}", unit=" events", disable=not progress)
        while ends:
            batch: list[RawMessage] = []
            for msg in c.consume(settings.batch_max_events, settings.batch_max_ms / 1000):
                if msg.error():
                    continue
                key = (msg.topic(), msg.partition())
                if key not in ends:
                    continue
                if msg.offset() >= ends[key]:
                    continue
                if msg.offset() + 1 >= ends[key]:
                    del ends[key]
                ts = msg.timestamp()[1]
                batch.append(RawMessage(msg.topic(), msg.partition(), msg.offset(), msg.key(),
                                        msg.value(), ts if ts > 0 else None))
            if not batch:
                continue
            result = processor.process(batch)
            for _, s in result.suggestions:
                p.produce(topics.suggestions, key=s.artwork_id.encode(), value=encode_event(s))
            for m, d in result.dead_letters:
                # Undecodable messages were dead-lettered when the worker first met them;
                # only what this model version fails on is news.
                if d.error_type in ("model", "output_too_large", "internal"):
                    p.produce(topics.dead_letters, key=dead_letter_key(m.key), value=result.value(d))
                    report.dead_letters += 1
                else:
                    report.invalid += 1
            flush_or_fail(p)
            for s in result.latest:
                p.produce(topics.latest, key=s.artwork_id.encode(), value=encode_event(s),
                          headers=state_headers(s.artwork_id, s.revision, s.content_hash,
                                                s.model_version))
            flush_or_fail(p)
            _commit(c)  # the group's offsets show the replay's progress
            report.read += len(batch)
            report.suggestions += len(result.suggestions)
            report.latest += len(result.latest)
            report.skipped += len(result.skipped)
            bar.update(len(batch))
        bar.close()
    finally:
        c.close()
        p.flush(10)
    report.elapsed_s = time.monotonic() - started
    log.info("replay read %d events as %s", report.read, model_version)
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
        ends = _ends(c, tps)
        c.assign(tps)
        while ends:
            for msg in c.consume(500, 1.0):
                if msg.error():
                    continue
                key = (msg.topic(), msg.partition())
                if key not in ends or msg.offset() >= ends[key]:
                    continue
                if msg.offset() + 1 >= ends[key]:
                    del ends[key]
                try:
                    dead = DeadLetter.model_validate_json(msg.value())
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
