"""The curation database on the real broker: what `arttag curate` writes while it follows
feedback in waves equals what `arttag curate rebuild` makes from the topic, on SQLite and
PostgreSQL, and a restarted processor converges on the same rows."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from arttag.curation.store import CurationStore
from arttag.events import encode_event
from arttag.kafka import make_producer
from arttag.kafka.admin import create_topics
from arttag.kafka.clients import flush_or_fail
from arttag.kafka.topics import TAG_FEEDBACK, topic_name
from arttag.settings import CurateSettings
from arttag_cli.main import main as cli_main
from arttag_curate.processor import CurateProcessor, rebuild

from .helpers import curator, feedback

pytestmark = pytest.mark.kafka

WAVES = [
    [feedback("W1", "t-sea", "accepted", f"p{i}", 10 * i) for i in range(1, 3)]
    + [feedback("W2", "t-dog", "rejected", "p1", 5), curator("W3", "t-boat", "added", 7)],
    # p1 and p2 are confirmed on W1 by a curator: their weight moves, and with it W2's row
    [curator("W1", "t-sea", "accepted", 100), feedback("W2", "t-dog", "rejected", "p2", 110),
     feedback("W2", "t-dog", "rejected", "p3", 111)],
    [feedback("W3", "t-boat", "rejected", "p3", 200), feedback("W1", "t-sea", "accepted", "p3", 300)],
]


def _wait(predicate, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s  # a bound on waiting, not an assertion on speed
    while not predicate():
        assert time.monotonic() < deadline, "the processor did not read the feedback in time"
        time.sleep(0.2)


def test_live_rows_equal_a_rebuild_from_the_topic(kafka_settings, database_url, tmp_path):
    create_topics(kafka_settings)
    settings = CurateSettings(kafka=kafka_settings, curate_group=f"curate-{uuid.uuid4().hex[:8]}", poll_s=0.2,
                              consensus_min_contributors=2, consensus_min_margin=1.0,
                              curation_database_url=database_url)
    store = CurationStore.open(database_url)
    processor = CurateProcessor(settings, store)
    stop = threading.Event()
    runner = threading.Thread(target=processor.run, kwargs={"stop": stop}, daemon=True)
    runner.start()
    producer = make_producer(kafka_settings)
    topic = topic_name(TAG_FEEDBACK, kafka_settings.topic_prefix)
    sent = 0
    try:
        for wave in WAVES:
            for event in wave:
                producer.produce(topic, key=event.artwork_id.encode(), value=encode_event(event))
            flush_or_fail(producer)
            sent += len(wave)
            _wait(lambda: processor.report.feedback_read >= sent)
    finally:
        stop.set()
        runner.join(timeout=30)
    assert not runner.is_alive()
    live = store.dump()
    statuses = {(r[0], r[1]): r[3:5] for r in live["curation_tags"]}
    assert statuses == {("W1", "t-sea"): ("accepted", "curator"), ("W2", "t-dog"): ("rejected", "consensus"),
                        ("W3", "t-boat"): ("accepted", "curator")}
    assert len(live["curation_votes"]) == 7 and len(live["curation_contributors"]) == 3

    # a token registered through the API is not in the topic: the rebuild keeps it
    contributor_id = store.register_contributor("ef" * 32)
    report = rebuild(settings, store)
    assert report.feedback_read == sent
    assert store.dump() == live
    assert store.contributor_for_token("ef" * 32) == contributor_id

    # a restart over a database that lost rows converges on the same content
    store.reset()
    CurateProcessor(settings, store).run(until_caught_up=True)
    assert store.dump() == live
    store.close()


def test_the_rebuild_command_recreates_a_fresh_database(kafka_settings, tmp_path, monkeypatch, capsys):
    create_topics(kafka_settings)
    producer = make_producer(kafka_settings)
    topic = topic_name(TAG_FEEDBACK, kafka_settings.topic_prefix)
    for event in WAVES[0]:
        producer.produce(topic, key=event.artwork_id.encode(), value=encode_event(event))
    producer.produce(topic, key=b"W9", value=b"not feedback")
    flush_or_fail(producer)
    url = f"sqlite:///{tmp_path / 'rebuilt.db'}"
    monkeypatch.setenv("ARTTAG_KAFKA__BOOTSTRAP_SERVERS", kafka_settings.bootstrap_servers)
    monkeypatch.setenv("ARTTAG_KAFKA__TOPIC_PREFIX", kafka_settings.topic_prefix)
    assert cli_main(["curate", "rebuild", "--database-url", url]) == 0
    out = capsys.readouterr().out
    assert "4 feedback events" in out and "1 unreadable" in out and "3 artwork tags" in out
    store = CurationStore.open(url)
    assert [t.status for t in store.tags("W3")] == ["accepted"]
    store.close()
