"""`arttag curate` on the real broker: feedback in (with a duplicate and a poison message),
decisions out; a rebuild from the beginning under a fresh group gives the same decisions."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid

import pytest
from arttag.curation.fold import decisions_of
from arttag.events import DeadLetter, TagDecisionsChanged, encode_event
from arttag.kafka import make_producer
from arttag.kafka.admin import create_topics
from arttag.kafka.clients import consumer, flush_or_fail, from_beginning, read_to_end
from arttag.kafka.topics import DEAD_LETTERS, TAG_DECISIONS, TAG_FEEDBACK, topic_name
from arttag.settings import CurateSettings
from arttag_curate.processor import CurateProcessor

from .helpers import curator, feedback

pytestmark = pytest.mark.kafka


def _read(kafka, topic: str) -> list:
    reader = consumer(kafka)
    try:
        return [m for records in read_to_end(reader, from_beginning(reader, topic), timeout_s=60)
                for m in records]
    finally:
        reader.close()


def _latest(kafka) -> dict[str, TagDecisionsChanged]:
    return {m.key().decode(): TagDecisionsChanged.model_validate_json(m.value())
            for m in _read(kafka, topic_name(TAG_DECISIONS, kafka.topic_prefix))}


def test_curate_folds_feedback_into_decisions_and_a_rebuild_agrees(kafka_settings, tmp_path):
    create_topics(kafka_settings)
    events = [
        curator("A1", "t-harbour", "accepted", 10, tag_label="harbour"),
        feedback("A1", "t-harbour", "rejected", "p1", 5),
        curator("A1", "t-dog", "rejected", 20),
        curator("A2", "t-sea", "added", 30, who="cur-2"),
        curator("A2", "t-sea", "rejected", 40),  # the newer word wins
        feedback("A3", "t-boat", "accepted", "p1", 50),
        *(feedback("A4", "t-tree", "accepted", f"p{i}", 600 + 100 * i) for i in range(2, 5)),
    ]
    producer = make_producer(kafka_settings)
    feedback_topic = topic_name(TAG_FEEDBACK, kafka_settings.topic_prefix)
    for event in [*events, events[0]]:  # the first one delivered twice
        producer.produce(feedback_topic, key=event.artwork_id.encode(), value=encode_event(event))
    producer.produce(feedback_topic, key=b"A9", value=b'{"not": "feedback"}')
    flush_or_fail(producer)

    settings = CurateSettings(kafka=kafka_settings, curate_group=f"curate-{uuid.uuid4().hex[:8]}",
                              curation_database_url=f"sqlite:///{tmp_path / 'curation.db'}")
    first = CurateProcessor(settings)
    report = first.run(until_caught_up=True)
    assert (report.feedback_read, report.duplicates, report.dead_lettered) == (10, 1, 1)
    assert report.published == 4

    latest = _latest(kafka_settings)
    assert sorted(latest) == ["A1", "A2", "A3", "A4"]
    a1, a2, a3 = latest["A1"], latest["A2"], latest["A3"]
    assert [(d.tag_id, d.tag_label, d.curator_id, d.votes_against) for d in a1.accepted] == \
        [("t-harbour", "harbour", "cur-1", 1)]
    assert [d.tag_id for d in a1.rejected] == ["t-dog"]
    assert a2.accepted == [] and [(d.tag_id, d.event_id) for d in a2.rejected] == \
        [("t-sea", events[4].event_id)]
    assert a3.proposed == ["t-boat"] and not a3.accepted and not a3.rejected
    [tree] = latest["A4"].accepted
    assert (tree.decided_by, tree.contributors) == ("consensus", ["p2", "p3", "p4"])

    [dead] = _read(kafka_settings, topic_name(DEAD_LETTERS, kafka_settings.topic_prefix))
    letter = DeadLetter.model_validate_json(dead.value())
    assert letter.topic == feedback_topic and letter.original_value() == b'{"not": "feedback"}'

    again = CurateProcessor(settings.model_copy(update={"curate_group": f"curate-{uuid.uuid4().hex[:8]}"}))
    second = again.run(until_caught_up=True)
    assert second.published == 0  # the topic already holds what the rebuild computes
    rebuilt = {a: decisions_of(again.state, a, again.rules) for a in again.state.artworks}
    assert rebuilt == latest == _latest(kafka_settings)


def test_curate_follows_feedback_that_arrives_after_it_caught_up(kafka_settings, tmp_path):
    create_topics(kafka_settings)
    settings = CurateSettings(kafka=kafka_settings, curate_group=f"curate-{uuid.uuid4().hex[:8]}",
                              poll_s=0.2, curation_database_url=f"sqlite:///{tmp_path / 'curation.db'}")
    processor = CurateProcessor(settings)
    stop = threading.Event()
    runner = threading.Thread(target=processor.run, kwargs={"stop": stop}, daemon=True)
    runner.start()
    try:
        producer = make_producer(kafka_settings)
        word = curator("L1", "t-live", "accepted", 10)
        producer.produce(topic_name(TAG_FEEDBACK, kafka_settings.topic_prefix), key=b"L1",
                         value=encode_event(word))
        flush_or_fail(producer)
        deadline = time.monotonic() + 60  # a bound on waiting, not an assertion on speed
        latest = {}
        while "L1" not in latest and time.monotonic() < deadline:
            time.sleep(0.5)
            latest = _latest(kafka_settings)
        [decision] = latest["L1"].accepted
        assert decision.event_id == word.event_id
    finally:
        stop.set()
        runner.join(timeout=30)
    assert not runner.is_alive()


def test_curate_dead_letters_a_message_with_a_huge_key_within_a_record(kafka_settings, tmp_path):
    # A 600 KB key and a 300 KB value fit in one incoming record, but kept whole (base64) and
    # keyed by the whole key the dead letter would be about 1.8 MB, over the broker's limit, and
    # the processor would stop. Prefixes and a cut key keep it within a record.
    create_topics(kafka_settings)
    producer = make_producer(kafka_settings)
    feedback_topic = topic_name(TAG_FEEDBACK, kafka_settings.topic_prefix)
    key, value = b"k" * 600_000, b"x" * 300_000
    producer.produce(feedback_topic, key=key, value=value)
    event = curator("A1", "t-sea", "accepted", 10)
    producer.produce(feedback_topic, key=b"A1", value=encode_event(event))
    flush_or_fail(producer)

    settings = CurateSettings(kafka=kafka_settings, curate_group=f"curate-{uuid.uuid4().hex[:8]}",
                              curation_database_url=f"sqlite:///{tmp_path / 'curation.db'}")
    report = CurateProcessor(settings).run(until_caught_up=True)
    assert (report.feedback_read, report.dead_lettered, report.published) == (1, 1, 1)
    [dead] = _read(kafka_settings, topic_name(DEAD_LETTERS, kafka_settings.topic_prefix))
    letter = DeadLetter.model_validate_json(dead.value())
    assert len(dead.key()) < len(key) and key.startswith(dead.key())
    assert (letter.original_key_length, letter.original_value_length) == (len(key), len(value))
    assert letter.original_key_sha256 == hashlib.sha256(key).hexdigest()
    assert sorted(_latest(kafka_settings)) == ["A1"]
