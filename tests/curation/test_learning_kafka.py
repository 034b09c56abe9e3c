"""Online learning in the real stream worker on the real broker: decisions on the topic before
the worker starts are learned at start-up, and a decision published while it runs changes the
very next suggestion of a sibling artwork (a page of the same sketchbook)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from arttag.catalogue.synthetic import write_synthetic_catalogue
from arttag.encoders import HashingEncoder
from arttag.events import ArtworkCreated, ArtworkMetadata, encode_event
from arttag.kafka import make_producer
from arttag.kafka.admin import create_topics
from arttag.kafka.clients import consumer
from arttag.kafka.topics import TAG_DECISIONS, StreamTopics, topic_name
from arttag.model.training import train_bundle
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from .helpers import curator
from .test_learning import LIGHTHOUSE, NEXT_PAGE, PAGE, decisions

pytestmark = pytest.mark.kafka

MILL = {"artists": ["Ben Elsewhere"], "group_title": "Trewellard Sketchbook", "medium": "Watercolour on paper"}
MILL_PAGE = ArtworkMetadata(title="Old Engine House at Trewellard Mine", accession_number="D91001", **MILL)
MILL_NEXT = ArtworkMetadata(title="Old Engine House at Trewellard Mine, from the Cliff",
                            accession_number="D91002", **MILL)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("learning-kafka")
    catalogue = write_synthetic_catalogue(root / "cat.jsonl.gz")
    # The lighthouse is carried only by a dev artwork: the thesaurus is what puts it in the vocabulary.
    from arttag.catalogue.synthetic import UNSEEN_TAG
    from arttag.catalogue.vocabulary import Tag, Vocabulary

    Vocabulary([Tag(str(UNSEEN_TAG[0]), UNSEEN_TAG[1], UNSEEN_TAG[2])]).to_csv(root / "thesaurus.csv")
    train_bundle(catalogue, root / "bundle", HashingEncoder(), {"reranker": {"max_iter": 60}, "evaluate": False},
                 vocabulary=root / "thesaurus.csv")
    return root / "bundle"


def produce(kafka, items) -> None:
    producer = make_producer(kafka)
    for topic, key, value in items:
        producer.produce(topic, key=key.encode(), value=value)
    assert producer.flush(30) == 0


def suggestion_of(kafka, topic: str, artwork_id: str, timeout_s: float = 60.0) -> dict:
    c = consumer(kafka)
    meta = c.list_topics(topic, timeout=10).topics[topic]
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions])
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for msg in c.consume(100, 0.3):
                if not msg.error() and msg.value() and msg.key() == artwork_id.encode():
                    return json.loads(msg.value())
    finally:
        c.close()
    raise AssertionError(f"no suggestion for {artwork_id} within {timeout_s}s")


def neighbour_evidence(record: dict, tag_id: str) -> list[dict]:
    tag = next((s for s in record["suggestions"] if s["tag_id"] == tag_id), None)
    if tag is None:
        return []
    return [e for c in tag["explanation"]["contributions"] for e in c["evidence"] if e["kind"] == "neighbour"]


def test_the_worker_learns_decisions_at_start_and_while_it_runs(kafka_settings, bundle, tmp_path):
    create_topics(kafka_settings)
    topics = StreamTopics.for_prefix(kafka_settings.topic_prefix)
    decisions_topic = topic_name(TAG_DECISIONS, kafka_settings.topic_prefix)
    created = lambda aid, meta: (topics.created, aid, encode_event(
        ArtworkCreated(artwork_id=aid, revision=1, artwork=meta)))
    # before the worker starts: a page of the Zennor sketchbook, a curator's acceptance of it,
    # and the next page, which the worker answers in its first batch
    produce(kafka_settings, [created("P1", PAGE),
                             (decisions_topic, "P1", encode_event(decisions(
                                 "P1", curator("P1", LIGHTHOUSE, "accepted", 1)))),
                             created("P2", NEXT_PAGE)])
    log_path = tmp_path / "worker.log"
    env = {**os.environ, "ARTTAG_KAFKA__BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
           "ARTTAG_KAFKA__TOPIC_PREFIX": kafka_settings.topic_prefix, "ARTTAG_BUNDLE_DIR": str(bundle),
           "ARTTAG_ENCODER_KIND": "hashing", "ARTTAG_CONSUMER_GROUP": f"g-{uuid.uuid4().hex[:6]}",
           "ARTTAG_METRICS_PORT": "0", "ARTTAG_BATCH_MAX_MS": "100", "ARTTAG_DATA_DIR": str(tmp_path / "data"),
           "ARTTAG_SESSION_TIMEOUT_S": "6", "ARTTAG_HEARTBEAT_INTERVAL_S": "1"}
    with open(log_path, "wb") as fh:
        worker = subprocess.Popen([sys.executable, "-m", "arttag_stream"], env=env, stdout=fh,
                                  stderr=subprocess.STDOUT)
    log = lambda: log_path.read_text(errors="replace")
    try:
        deadline = time.monotonic() + 90
        while "Worker ready" not in log():
            assert worker.poll() is None and time.monotonic() < deadline, log()[-3000:]
            time.sleep(0.2)

        # learned before the first event: the next page's lighthouse comes from the accepted page
        cited = neighbour_evidence(suggestion_of(kafka_settings, topics.suggestions, "P2"), LIGHTHOUSE)
        assert {"artwork_id": "P1", "title": PAGE.title, "from_decision": True} | {
            "similarity": cited[0]["similarity"], "kind": "neighbour"} in cited

        # while it runs: another sketchbook's page, suggested, then its lighthouse accepted
        produce(kafka_settings, [created("M1", MILL_PAGE)])
        first = suggestion_of(kafka_settings, topics.suggestions, "M1")
        produce(kafka_settings, [(decisions_topic, "M1", encode_event(decisions(
            "M1", curator("M1", LIGHTHOUSE, "added", 1, suggestion_id=first["suggestion_id"]))))])
        deadline = time.monotonic() + 30
        while "artwork M1 learned with 1 tag(s)" not in log():
            assert worker.poll() is None and time.monotonic() < deadline, log()[-3000:]
            time.sleep(0.1)
        produce(kafka_settings, [created("M2", MILL_NEXT)])
        sibling = suggestion_of(kafka_settings, topics.suggestions, "M2")
        assert LIGHTHOUSE in [s["tag_id"] for s in sibling["suggestions"][:3]]
        [lighthouse] = [s for s in sibling["suggestions"] if s["tag_id"] == LIGHTHOUSE]
        group = next(c for c in lighthouse["explanation"]["contributions"] if c["scorer"] == "group")
        assert [(e["artwork_id"], e["from_decision"]) for e in group["evidence"]] == [("M1", True)]
    finally:
        worker.terminate()
        worker.wait(30)


def test_train_reads_the_newest_decisions_from_the_topic(kafka_settings):
    from arttag.curation.labels import read_decisions

    create_topics(kafka_settings)
    decisions_topic = topic_name(TAG_DECISIONS, kafka_settings.topic_prefix)
    older = decisions("A1", curator("A1", "5", "accepted", 1))
    newer = decisions("A1", curator("A1", "5", "accepted", 1), curator("A1", "6", "rejected", 2))
    produce(kafka_settings, [(decisions_topic, "A1", encode_event(older)), (decisions_topic, "A1", encode_event(newer)),
                             (decisions_topic, "A2", b"not a decision")])
    found, read = read_decisions("kafka:", kafka_settings)
    assert found == {"A1": newer} and read == {"source": "kafka:", "records": 1, "bad_records": 0}
