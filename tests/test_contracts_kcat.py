"""The event contracts as a downstream consumer sees them, checked by independent clients.

A short end-to-end run on the real broker (the stream worker, backfill of created and
updated events, feedback through the API's publisher, a malformed artwork event and a
malformed feedback event, then ``arttag curate --until-caught-up`` folding that feedback
into decisions), then every topic arttag writes is read with Debian's ``kcat``
(librdkafka's command-line client, not arttag's code) and every value is validated against
``schemas/`` with ``check-jsonschema``. What is checked is what docs/topics.md promises:
keys, co-partitioning, headers, the dead letters, deduplication by ``suggestion_id``,
history ordered by revision, and the latest topic as the highest revision per artwork.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
from arttag.events import FeedbackActor, TagFeedbackGiven
from arttag.kafka import make_producer, partition_for
from arttag.kafka.admin import create_topics
from arttag.kafka.clients import flush_or_fail
from arttag.kafka.topics import TAG_DECISIONS, StreamTopics, topic_name
from arttag.settings import KafkaSettings

pytestmark = pytest.mark.kafka

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
SCHEMA_OF = {  # topic (without prefix) -> schema file; docs/topics.md has the same table
    "artworks.created.v1": "artwork-created.v1.json",
    "artworks.updated.v1": "artwork-updated.v1.json",
    "tags.suggestions.v1": "tag-suggestions-published.v1.json",
    "tags.suggestions.latest.v1": "tag-suggestions-published.v1.json",
    "tags.feedback.v1": "tag-feedback-given.v1.json",
    "tags.decisions.v1": "tag-decisions-changed.v1.json",
    "arttag.deadletter.v1": "dead-letter.v1.json",
}
STATE_HEADERS = ("arttag-artwork-id", "arttag-revision", "arttag-content-hash", "arttag-model-version")
PARTITIONS = 3  # the default; CRC32 and murmur2 disagree on artworks 5 and 37 there
ARTWORKS = 24


def _tool(name: str, hint: str) -> list[str]:
    """The command of an independent client; in CI (``CI`` set) a missing one fails the test."""
    beside_python = Path(sys.executable).parent / name  # a virtualenv's scripts, not on PATH
    found = shutil.which(name) or (str(beside_python) if beside_python.exists() else None)
    if found:
        return [found]
    if os.environ.get("CI"):
        pytest.fail(f"{name} is missing in CI: {hint}")
    pytest.skip(f"{name} is not installed ({hint})")


@pytest.fixture(scope="session")  # session: resolved before the session's costly fixtures
def kcat() -> list[str]:
    return _tool("kcat", ".ci/run installs it with `apt-get install -y kcat`")


@pytest.fixture(scope="session")
def check_jsonschema() -> list[str]:
    return _tool("check-jsonschema", "pip install -e '.[test]'")


def _catalogue(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _start_worker(kafka: KafkaSettings, bundle: Path, log_path: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "ARTTAG_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "ARTTAG_KAFKA__TOPIC_PREFIX": kafka.topic_prefix,
        "ARTTAG_BUNDLE_DIR": str(bundle),
        "ARTTAG_ENCODER_KIND": "hashing",
        "ARTTAG_CONSUMER_GROUP": f"contracts-{uuid.uuid4().hex[:6]}",
        "ARTTAG_METRICS_PORT": "0",
        "ARTTAG_SESSION_TIMEOUT_S": "6",
        "ARTTAG_HEARTBEAT_INTERVAL_S": "1",
        "ARTTAG_COMMIT_INTERVAL_S": "0.5",
        "ARTTAG_BATCH_MAX_MS": "100",
        "ARTTAG_DATA_DIR": str(log_path.parent / "data"),
    }
    with open(log_path, "ab") as fh:
        return subprocess.Popen([sys.executable, "-m", "arttag_stream"], env=env, stdout=fh,
                                stderr=subprocess.STDOUT)


def _curate_until_caught_up(kafka: KafkaSettings, work: Path) -> str:
    """``arttag curate --until-caught-up`` under a fresh group; returns its summary line."""
    env = {
        **os.environ,
        "ARTTAG_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "ARTTAG_KAFKA__TOPIC_PREFIX": kafka.topic_prefix,
        "ARTTAG_CURATION_DATABASE_URL": f"sqlite:///{work / 'curation.db'}",
    }
    out = subprocess.run([sys.executable, "-m", "arttag_cli", "curate", "--until-caught-up",
                          "--group", f"contracts-curate-{uuid.uuid4().hex[:6]}"],
                         env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def _kcat_read(kcat: list[str], kafka: KafkaSettings, topic: str) -> list[dict]:
    """Every record of ``topic`` from the beginning to its current end, as kcat's JSON envelopes."""
    out = subprocess.run([*kcat, "-b", kafka.bootstrap_servers, "-C", "-t", topic, "-o", "beginning",
                          "-e", "-q", "-J"], capture_output=True, text=True, timeout=60, check=True)
    records = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    for r in records:
        flat = r.get("headers") or []
        r["headers"] = dict(zip(flat[::2], flat[1::2]))
    return records


def _wait_for(kcat, kafka, topic: str, done, proc: subprocess.Popen, log_path: Path,
              timeout_s: float = 180.0) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        records = _kcat_read(kcat, kafka, topic)
        if done(records):
            return records
        assert proc.poll() is None, log_path.read_text(errors="replace")[-3000:]
        assert time.monotonic() < deadline, f"{topic}: {len(records)} records after {timeout_s}s"
        time.sleep(1.0)


@pytest.fixture(scope="module")
def run(kcat, kafka_bootstrap, sample_catalogue, hashing_bundle_dir, tmp_path_factory):
    """The end-to-end run; returns (topics, every topic's records read by kcat, what was sent)."""
    from arttag_api.publisher import KafkaFeedbackPublisher
    from arttag_stream.backfill import backfill

    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, partitions=PARTITIONS,
                          topic_prefix=f"test-{uuid.uuid4().hex[:8]}.")
    create_topics(kafka)
    topics = StreamTopics.for_prefix(kafka.topic_prefix)
    work = tmp_path_factory.mktemp("contracts")
    log_path = work / "worker.log"
    worker = _start_worker(kafka, hashing_bundle_dir, log_path)
    try:
        with gzip.open(sample_catalogue, "rt") as fh:
            rows = [json.loads(line) for _, line in zip(range(ARTWORKS), fh)]
        ids = [str(r["id"]) for r in rows]
        # revision 1 of every artwork; revision 3 (new title) of four; then, late, revision 2
        # (another title) of the same four: history gets it after revision 3, latest never does.
        backfill(kafka, _catalogue(work / "r1.jsonl", rows), progress=False)
        # the updates go to another topic: let revision 1 be answered first, so the order is known
        _wait_for(kcat, kafka, topics.suggestions, lambda rs: len(rs) >= ARTWORKS, worker, log_path)
        changed = rows[:4]
        backfill(kafka, _catalogue(work / "r3.jsonl", [{**r, "title": r["title"] + " (revised)"}
                                                       for r in changed]),
                 kind="updated", revision=3, progress=False)
        backfill(kafka, _catalogue(work / "r2.jsonl", [{**r, "title": r["title"] + " (draft)"}
                                                       for r in changed]),
                 kind="updated", revision=2, progress=False)
        p = make_producer(kafka)
        p.produce(topics.created, key=b"broken-1", value=b'{"event_type": "artwork.created", "artw')
        p.produce(topics.feedback, key=b"broken-2", value=b'{"event_type": "tag_feedback.given"}')
        flush_or_fail(p)
        publisher = KafkaFeedbackPublisher(kafka)
        try:
            for aid in ids[:8]:
                publisher.publish(TagFeedbackGiven(artwork_id=aid, tag_id="1050", action="accepted",
                                                   actor=FeedbackActor(kind="curator", id="c1")))
            # one public vote: a proposal, not a decision
            publisher.publish(TagFeedbackGiven(artwork_id=ids[8], tag_id="1050", action="accepted",
                                               actor=FeedbackActor(kind="public", id="p1")))
        finally:
            publisher.close()
        expected = ARTWORKS + 2 * len(changed)
        _wait_for(kcat, kafka, topics.suggestions, lambda rs: len(rs) >= expected, worker, log_path)
        _wait_for(kcat, kafka, topics.dead_letters, lambda rs: len(rs) >= 2, worker, log_path)
    finally:
        worker.terminate()
        worker.wait(30)
    assert worker.returncode == 0, log_path.read_text(errors="replace")[-3000:]
    curated = _curate_until_caught_up(kafka, work)
    decisions = topic_name(TAG_DECISIONS, kafka.topic_prefix)
    records = {name: _kcat_read(kcat, kafka, name) for name in
               (topics.created, topics.updated, topics.suggestions, topics.latest,
                topics.feedback, decisions, topics.dead_letters)}
    return topics, records, {"ids": ids, "changed": [str(r["id"]) for r in changed],
                             "prefix": kafka.topic_prefix, "decisions": decisions,
                             "curated": curated}


def test_every_value_is_valid_against_its_schema_except_the_dead_lettered(run, check_jsonschema,
                                                                           tmp_path):
    topics, records, sent = run
    dead = {(d["topic"], d["partition"], d["offset"])
            for d in (json.loads(r["payload"]) for r in records[topics.dead_letters])}
    assert len(dead) == 2
    for topic, recs in records.items():
        base = topic.removeprefix(sent["prefix"])
        folder = tmp_path / base
        folder.mkdir()
        files = {}
        for r in recs:
            path = folder / f"{r['partition']}-{r['offset']}.json"
            path.write_text(r["payload"])
            files[str(path)] = (topic, r["partition"], r["offset"])
        out = subprocess.run([*check_jsonschema, "--schemafile", str(SCHEMAS / SCHEMA_OF[base]),
                              "-o", "json", *files], capture_output=True, text=True, timeout=120)
        assert out.stdout.startswith("{"), out.stderr  # a report, not a crash of the tool
        report = json.loads(out.stdout)
        invalid = {files[e["filename"]]
                   for e in report.get("errors", []) + report.get("parse_errors", [])}
        # The only invalid values anywhere are the two malformed inputs, and each has its dead letter.
        assert invalid == {where for where in dead if where[0] == topic}, (topic, report)


def test_every_record_is_keyed_by_artwork_id_and_dead_letters_by_the_original_key(run):
    topics, records, sent = run
    for topic, recs in records.items():
        assert recs, f"{topic} is empty"
        for r in recs:
            assert r["key"], (topic, r)
            if r["key"].startswith("broken-"):
                continue  # the malformed inputs: their keys come back on their dead letters
            value = json.loads(r["payload"])
            if topic == topics.dead_letters:
                assert base64.b64decode(value["original_key_b64"]).decode() == r["key"]
            else:
                assert r["key"] == value["artwork_id"], (topic, r)
    assert {r["key"] for r in records[topics.created]} == set(sent["ids"]) | {"broken-1"}


def test_same_key_same_partition_number_on_every_topic_and_it_is_murmur2(run):
    topics, records, sent = run
    where: dict[str, set[int]] = defaultdict(set)
    for topic, recs in records.items():
        for r in recs:
            assert r["partition"] == partition_for(r["key"].encode(), PARTITIONS), (topic, r["key"])
            where[r["key"]].add(r["partition"])
    assert all(len(parts) == 1 for parts in where.values()), dict(where)
    # artworks 5 and 37 (the reported ones) have records on several topics, feedback included
    feedback_keys = {r["key"] for r in records[topics.feedback]}
    assert {"5", "37"} <= set(sent["ids"]) and "5" in feedback_keys


def test_latest_records_carry_the_documented_headers_and_no_other_topic_does(run):
    topics, records, _ = run
    for r in records[topics.latest]:
        value = json.loads(r["payload"])
        assert r["headers"] == {
            "arttag-artwork-id": value["artwork_id"], "arttag-revision": str(value["revision"]),
            "arttag-content-hash": value["content_hash"],
            "arttag-model-version": value["model_version"],
        }
    for topic, recs in records.items():
        if topic != topics.latest:
            assert not any(set(r["headers"]) & set(STATE_HEADERS) for r in recs), topic


def test_one_suggestion_id_one_content_and_history_is_ordered_by_revision_not_offset(run):
    topics, records, sent = run
    history = [json.loads(r["payload"]) | {"_offset": r["offset"]} for r in records[topics.suggestions]]
    contents: dict[str, set[str]] = defaultdict(set)
    for h in history:
        contents[h["suggestion_id"]].add(h["content_hash"])
        assert h["suggestion_id"].startswith(f"{h['artwork_id']}:{h['revision']}:{h['content_hash'][:16]}:")
    assert all(len(c) == 1 for c in contents.values())
    for aid in sent["changed"]:
        revisions = [h["revision"] for h in sorted(history, key=lambda h: h["_offset"])
                     if h["artwork_id"] == aid]
        assert revisions == [1, 3, 2]  # offset order; readers order by revision


def test_latest_read_from_the_beginning_is_the_highest_revision_per_artwork(run):
    topics, records, sent = run
    latest: dict[str, str] = {}
    for r in records[topics.latest]:  # what a compacted read keeps: the last record per key
        latest[r["key"]] = r["payload"]
    best: dict[str, dict] = {}
    for r in records[topics.suggestions]:
        value = json.loads(r["payload"])
        if value["artwork_id"] not in best or value["revision"] > best[value["artwork_id"]]["revision"]:
            best[value["artwork_id"]] = value | {"_payload": r["payload"]}
    assert set(latest) == set(best) == set(sent["ids"])
    for aid, payload in latest.items():
        assert payload == best[aid]["_payload"], aid
    assert {json.loads(latest[a])["revision"] for a in sent["changed"]} == {3}


def test_curate_folds_the_feedback_into_one_decisions_record_per_artwork(run):
    topics, records, sent = run
    assert "decisions records published: 9" in sent["curated"], sent["curated"]
    decided = {r["key"]: json.loads(r["payload"]) for r in records[sent["decisions"]]}
    assert len(records[sent["decisions"]]) == len(decided) == 9
    for aid in sent["ids"][:8]:  # the curator's word decides
        [accepted] = decided[aid]["accepted"]
        assert (accepted["tag_id"], accepted["decided_by"], accepted["curator_id"]) == \
            ("1050", "curator", "c1")
        assert decided[aid]["rejected"] == [] and decided[aid]["proposed"] == []
    proposal = decided[sent["ids"][8]]  # one public vote is short of a consensus
    assert (proposal["accepted"], proposal["proposed"]) == ([], ["1050"])


def test_each_reader_of_a_malformed_message_dead_letters_it_once(run):
    topics, records, _ = run
    letters = [json.loads(r["payload"]) for r in records[topics.dead_letters]]
    by = sorted((d["topic"], d["offset"], d["consumer"] == "arttag-curate") for d in letters)
    created, feedback = (records[t] for t in (topics.created, topics.feedback))
    [broken_created] = [r["offset"] for r in created if r["key"] == "broken-1"]
    [broken_feedback] = [r["offset"] for r in feedback if r["key"] == "broken-2"]
    # the stream worker reads both topics; arttag curate reads the feedback topic too
    assert by == sorted([(topics.created, broken_created, False), (topics.feedback, broken_feedback, False),
                         (topics.feedback, broken_feedback, True)])
