"""The stream worker against the real broker, with a real bundle (sample catalogue, hashing encoder).

Workers run as subprocesses (`python -m arttag_stream`), as in production; one
worker is shared by the first tests of this module (their own topic prefix).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from arttag.catalogue.records import iter_catalogue
from arttag.catalogue.text import content_hash
from arttag.events import (
    ArtworkCreated,
    ArtworkUpdated,
    DeadLetter,
    TagSuggestion,
    TagSuggestionsPublished,
    encode_event,
)
from arttag.kafka import make_producer
from arttag.kafka.admin import create_topics
from arttag.kafka.clients import consumer
from arttag.kafka.topics import StreamTopics
from arttag.settings import KafkaSettings
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

pytestmark = pytest.mark.kafka


# -- helpers ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle_dir(hashing_bundle_dir) -> Path:
    """The session's bundle trained on the sample with the hashing encoder (tests/conftest.py)."""
    return hashing_bundle_dir


@pytest.fixture(scope="module")
def artworks(sample_catalogue):
    """Sample records with tags, as (artwork id, metadata)."""
    out = []
    for record in iter_catalogue(sample_catalogue):
        if record.metadata.tags:
            out.append((record.artwork_id, record.metadata))
        if len(out) >= 200:
            break
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Worker:
    def __init__(self, kafka: KafkaSettings, bundle: Path, group: str, log_path: Path,
                 metrics_port: int = 0, batch_max_events: int = 8) -> None:
        self.log_path = log_path
        self.metrics_port = metrics_port
        env = {
            **os.environ,
            "ARTTAG_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "ARTTAG_KAFKA__TOPIC_PREFIX": kafka.topic_prefix,
            "ARTTAG_BUNDLE_DIR": str(bundle),
            "ARTTAG_ENCODER_KIND": "hashing",
            "ARTTAG_CONSUMER_GROUP": group,
            "ARTTAG_METRICS_PORT": str(metrics_port),
            "ARTTAG_SESSION_TIMEOUT_S": "6",
            "ARTTAG_HEARTBEAT_INTERVAL_S": "1",
            "ARTTAG_COMMIT_INTERVAL_S": "0.5",
            "ARTTAG_BATCH_MAX_EVENTS": str(batch_max_events),
            "ARTTAG_BATCH_MAX_MS": "100",
            "ARTTAG_DATA_DIR": str(log_path.parent / "data"),
        }
        with open(log_path, "ab") as fh:
            self.proc = subprocess.Popen([sys.executable, "-m", "arttag_stream"], env=env,
                                         stdout=fh, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while "Worker ready" not in self.log():
            assert self.proc.poll() is None, self.log()[-3000:]
            assert time.monotonic() < deadline, self.log()[-3000:]
            time.sleep(0.2)

    def published(self) -> int:
        return self.log().count(": published ")

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return r.read().decode()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def publish(kafka: KafkaSettings, items: list[tuple[str, bytes | None, bytes | None]]) -> list[tuple[str, int, int]]:
    """Produce (topic, key, value) in order; returns each message's (topic, partition, offset)."""
    p = make_producer(kafka)
    where: list[tuple[str, int, int] | None] = [None] * len(items)

    def report(i):
        def cb(err, msg):
            assert err is None, err
            where[i] = (msg.topic(), msg.partition(), msg.offset())
        return cb

    for i, (topic, key, value) in enumerate(items):
        p.produce(topic, key=key, value=value, on_delivery=report(i))
    assert p.flush(30) == 0
    return where  # type: ignore[return-value]


def read_until(kafka: KafkaSettings, topic: str, done: Callable[[list[dict]], bool],
               timeout_s: float = 90.0, check: Callable[[], None] | None = None) -> list[dict]:
    """Records of ``topic`` from the beginning (JSON values, with key/partition/offset) until ``done``."""
    c = consumer(kafka)
    meta = c.list_topics(topic, timeout=10).topics[topic]
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions])
    records: list[dict] = []
    deadline = time.monotonic() + timeout_s
    try:
        while not done(records):
            assert time.monotonic() < deadline, f"timed out with {len(records)} records of {topic}"
            if check:
                check()
            for msg in c.consume(200, 0.3):
                if msg.error() or msg.value() is None:
                    continue
                records.append({**json.loads(msg.value()), "_key": msg.key(),
                                "_partition": msg.partition(), "_offset": msg.offset()})
    finally:
        c.close()
    return records


def read_all(kafka: KafkaSettings, topic: str) -> list[dict]:
    """Every record of ``topic`` up to its current end."""
    c = consumer(kafka)
    meta = c.list_topics(topic, timeout=10).topics[topic]
    total = 0
    for p in meta.partitions:
        low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        total += high - low
    c.close()
    return read_until(kafka, topic, lambda rs: len(rs) >= total, timeout_s=30)


def ids(records) -> set[str]:
    return {r["suggestion_id"] for r in records}


def expected_id(record: dict, chash: str, revision: int = 1) -> str:
    """The id a published record must carry: its artwork, its revision, the content it was sent
    with, its model version and its own answer."""
    answer = [TagSuggestion.model_validate(s) for s in record["suggestions"]]
    return TagSuggestionsPublished.make_id(record["artwork_id"], revision, chash, record["model_version"], answer)


def created(aid: str, meta, revision: int = 1) -> bytes:
    return encode_event(ArtworkCreated(artwork_id=aid, revision=revision, artwork=meta))


def updated(aid: str, meta, revision: int) -> bytes:
    return encode_event(ArtworkUpdated(artwork_id=aid, revision=revision, artwork=meta))


# -- one worker for the behaviour tests --------------------------------------------------------------


@pytest.fixture(scope="module")
def shared(kafka_bootstrap, bundle_dir, tmp_path_factory):
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap,
                          topic_prefix=f"test-{uuid.uuid4().hex[:8]}.", partitions=2)
    create_topics(kafka)
    logs = tmp_path_factory.mktemp("worker")
    worker = Worker(kafka, bundle_dir, f"g-{uuid.uuid4().hex[:6]}", logs / "worker.log",
                    metrics_port=free_port())
    worker.wait_ready()
    yield kafka, StreamTopics.for_prefix(kafka.topic_prefix), worker
    assert worker.stop() == 0, worker.log()[-3000:]


def test_event_in_suggestion_out_with_explanations_on_both_topics(shared, artworks):
    kafka, topics, worker = shared
    batch = artworks[:5]
    publish(kafka, [(topics.created, aid.encode(), created(aid, meta)) for aid, meta in batch])
    want = {(aid, 1) for aid, _ in batch}
    out = read_until(kafka, topics.suggestions,
                     lambda rs: {(r["artwork_id"], r["revision"]) for r in rs} >= want)
    for r in out:
        assert r["_key"] == r["artwork_id"].encode()
        assert r["suggestions"], r
        for tag in r["suggestions"]:
            assert tag["explanation"]["summary"] and tag["explanation"]["contributions"]
            assert 0.0 <= tag["confidence"] <= 1.0
    latest = read_until(kafka, topics.latest, lambda rs: len({r["artwork_id"] for r in rs}) >= 5)
    assert {r["artwork_id"] for r in latest} == {aid for aid, _ in batch}
    metrics = worker.metrics()
    assert "arttag_stream_events_in_total" in metrics and "arttag_stream_batch_size_count" in metrics
    assert f'arttag_stream_suggestions_out_total{{topic="{topics.suggestions}"}}' in metrics
    assert "arttag_dq_artworks_total" in metrics  # the data-quality monitor is wired in


def test_unchanged_update_gives_no_suggestion_and_older_revision_never_wins_latest(shared, artworks):
    kafka, topics, worker = shared
    aid, meta = artworks[10]
    changed = meta.model_copy(update={"title": meta.title + " (revised)"})
    older = meta.model_copy(update={"title": meta.title + " (draft)"})
    # Same key, so the same partition of each topic: processed in this order.
    publish(kafka, [(topics.created, aid.encode(), created(aid, meta, 1))])
    read_until(kafka, topics.suggestions, lambda rs: any(r["artwork_id"] == aid for r in rs))
    publish(kafka, [
        (topics.updated, aid.encode(), updated(aid, meta, 2)),      # unchanged content
        (topics.updated, aid.encode(), updated(aid, changed, 5)),   # new content
        (topics.updated, aid.encode(), updated(aid, older, 4)),     # late, older revision
    ])
    mine = read_until(kafka, topics.suggestions,
                      lambda rs: {r["revision"] for r in rs if r["artwork_id"] == aid} >= {1, 5, 4})
    revisions = sorted(r["revision"] for r in mine if r["artwork_id"] == aid)
    assert revisions == [1, 4, 5]  # no suggestion for the unchanged revision 2
    latest = read_until(kafka, topics.latest,
                        lambda rs: any(r["artwork_id"] == aid and r["revision"] == 5 for r in rs))
    assert [r["revision"] for r in latest if r["artwork_id"] == aid] == [1, 5]
    assert "content unchanged" in worker.log()


def test_poison_messages_are_dead_lettered_and_good_ones_flow(shared, artworks):
    kafka, topics, worker = shared
    good = artworks[20:30]
    bad = [
        (topics.created, b"bad-utf8", b"\xff\xfe\xfa"),
        (topics.created, b"bad-json", b'{"event_type": "artwork.created", '),
        (topics.updated, b"bad-schema", json.dumps({"event_type": "artwork.updated", "artwork_id": "X",
                                                    "revision": -1, "artwork": {}}).encode()),
        (topics.created, b"tombstone", None),
    ]
    items = [(topics.created, aid.encode(), created(aid, meta)) for aid, meta in good]
    for i, b in enumerate(bad):  # interleave
        items.insert(2 * i + 1, b)
    where = publish(kafka, items)
    out = read_until(kafka, topics.suggestions,
                     lambda rs: {a for a, _ in good} <= {r["artwork_id"] for r in rs})
    assert {a for a, _ in good} <= {r["artwork_id"] for r in out}
    dead = read_until(kafka, topics.dead_letters, lambda rs: len(rs) >= len(bad))
    assert len(dead) == len(bad)
    expected = {(t, p, o): (key, value) for (t, key, value), (_, p, o) in
                zip(items, where) if key and key.startswith((b"bad", b"tomb"))}
    reasons = set()
    for record in dead:
        d = DeadLetter.model_validate({k: v for k, v in record.items() if not k.startswith("_")})
        key, value = expected[(d.topic, d.partition, d.offset)]
        assert d.original_value() == value and d.original_key() == key
        assert d.error
        reasons.add(d.error_type)
    assert reasons == {"undecodable", "invalid_json", "schema", "empty"}
    assert 'arttag_stream_dead_letters_total{error_type="schema"} 1.0' in worker.metrics()


def test_feedback_reaches_the_data_quality_monitor(shared):
    from arttag.events import FeedbackActor, TagFeedbackGiven

    kafka, topics, worker = shared
    feedback = TagFeedbackGiven(artwork_id="T1", tag_id="270", action="accepted",
                                actor=FeedbackActor(kind="curator", id="c1"))
    # a newer API of the same version may add optional fields: observed too, not dead-lettered
    newer = json.loads(encode_event(feedback.model_copy(update={"action": "rejected"})))
    newer["added_later"] = 1
    newer["actor"]["added_later"] = 1
    publish(kafka, [(topics.feedback, b"T1", encode_event(feedback)),
                    (topics.feedback, b"T1", json.dumps(newer).encode())])
    deadline = time.monotonic() + 30
    while not all(f'arttag_dq_feedback_total{{action="{action}"}} 1.0' in worker.metrics()
                  for action in ("accepted", "rejected")):
        assert time.monotonic() < deadline, worker.log()[-2000:]
        time.sleep(0.3)


def test_replay_under_a_new_model_version_and_dead_letter_resubmission(shared, artworks, bundle_dir):
    from arttag.model.bundle import load_tagger
    from arttag.settings import StreamSettings
    from arttag_stream.replay import replay_artworks, replay_dead_letters

    kafka, topics, worker = shared
    mine = artworks[40:43]
    publish(kafka, [(topics.created, a.encode(), created(a, m)) for a, m in mine]
            + [(topics.created, b"bad-replay", b"not json")])
    read_until(kafka, topics.suggestions, lambda rs: {a for a, _ in mine} <= {r["artwork_id"] for r in rs})
    dead_before = len(read_until(kafka, topics.dead_letters,
                                 lambda rs: any(r["_key"] == b"bad-replay" for r in rs)))
    settings = StreamSettings(kafka=kafka, bundle_dir=bundle_dir, encoder_kind="hashing",
                              consumer_group="replay-test")
    before = read_all(kafka, topics.suggestions)
    report = replay_artworks(settings, load_tagger(bundle_dir), model_version="v2-test", progress=False)
    assert report.read >= 4 and report.invalid >= 1 and report.dead_letters == 0
    after = read_until(kafka, topics.suggestions,
                       lambda rs: sum(r["model_version"] == "v2-test" for r in rs) >= report.suggestions)
    replayed = {(r["artwork_id"], r["revision"]) for r in after if r["model_version"] == "v2-test"}
    assert {(r["artwork_id"], r["revision"]) for r in before} <= replayed
    # Run again: the latest state is answered under v2-test already, so nothing new reaches the
    # latest topic; revisions older than an artwork's newest may be re-sent. Each record's id
    # names its own answer: a re-sent revision keeps its id when the answer is the same, and gets
    # another when it is not (batches of other artworks can move a near-tie at a scorer's
    # candidate cut-off), so a consumer dropping by id never drops a different answer.
    again = replay_artworks(settings, load_tagger(bundle_dir), model_version="v2-test", progress=False)
    assert again.latest == 0 and again.skipped >= len(mine)
    total = len(after) + again.suggestions
    final = read_until(kafka, topics.suggestions, lambda rs: len(rs) >= total)
    answered = [r for r in final if r["model_version"] == "v2-test"]
    assert {(r["artwork_id"], r["revision"]) for r in answered} == replayed
    assert all(r["suggestion_id"] == expected_id(r, r["content_hash"], r["revision"]) for r in answered)
    dl = replay_dead_letters(settings, group="dl-replay")
    assert dl.resubmitted == dead_before and dl.by_topic.get(topics.created, 0) >= 1
    c = consumer(kafka, "dl-replay")  # its committed offsets: those are never re-sent
    committed = c.committed([TopicPartition(topics.dead_letters, p) for p in range(2)], timeout=10)
    c.close()
    assert sum(max(tp.offset, 0) for tp in committed) == dead_before
    # The worker dead-letters them again (they are still broken).
    read_until(kafka, topics.dead_letters, lambda rs: len(rs) >= 2 * dead_before)


# -- crash and scale-out -----------------------------------------------------------------------------


def test_worker_killed_mid_batch_and_restarted_loses_nothing(kafka_settings, bundle_dir, artworks, tmp_path):
    create_topics(kafka_settings)
    topics = StreamTopics.for_prefix(kafka_settings.topic_prefix)
    group = f"g-{uuid.uuid4().hex[:6]}"
    batch = artworks[:120]
    publish(kafka_settings, [(topics.created, a.encode(), created(a, m)) for a, m in batch])
    first = Worker(kafka_settings, bundle_dir, group, tmp_path / "w1.log")
    read_until(kafka_settings, topics.suggestions, lambda rs: len(rs) >= 16,
               check=lambda: first.proc.poll() is None or pytest.fail(first.log()[-3000:]))
    first.stop(signal.SIGKILL)
    killed_at = len(read_all(kafka_settings, topics.suggestions))
    assert killed_at < len(batch), "the worker finished before it was killed; the test proves nothing"
    second = Worker(kafka_settings, bundle_dir, group, tmp_path / "w2.log")
    try:
        out = read_until(kafka_settings, topics.suggestions, lambda rs: len(ids(rs)) >= len(batch),
                         timeout_s=120)
    finally:
        assert second.stop() == 0
    hashes = {a: content_hash(m) for a, m in batch}
    assert {r["artwork_id"] for r in out} == set(hashes)
    assert all(r["suggestion_id"] == expected_id(r, hashes[r["artwork_id"]]) for r in out)
    duplicates = len(out) - len(ids(out))
    print(f"killed after {killed_at} suggestions; {duplicates} duplicates after restart")
    assert duplicates <= 32  # at most the uncommitted window is redone


PUBLISHED_LINE = re.compile(r"artwork (\S+) rev \d+ from (\S+)\[(\d+)\]@\d+: published (\S+)")


def wait_for_members(kafka: KafkaSettings, group: str, members: int, timeout_s: float = 120.0) -> list[int]:
    """Until ``group`` has ``members`` members each holding partitions; returns how many each holds."""
    from arttag.kafka.admin import admin_client

    admin = admin_client(kafka)
    deadline = time.monotonic() + timeout_s
    held: list[int] = []
    while time.monotonic() < deadline:
        try:
            desc = admin.describe_consumer_groups([group])[group].result(10)
            held = [len(m.assignment.topic_partitions) for m in desc.members]
        except Exception:  # noqa: BLE001 - the group is not there yet
            held = []
        if len(held) == members and all(held):
            return held
        time.sleep(0.5)
    pytest.fail(f"group {group} did not settle on {members} members with partitions: {held}")


def test_two_workers_in_one_group_tag_every_artwork_exactly_once(kafka_bootstrap, bundle_dir, artworks, tmp_path):
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap,
                          topic_prefix=f"test-{uuid.uuid4().hex[:8]}.", partitions=4)
    create_topics(kafka)
    topics = StreamTopics.for_prefix(kafka.topic_prefix)
    group = f"g-{uuid.uuid4().hex[:6]}"
    workers = [Worker(kafka, bundle_dir, group, tmp_path / f"w{i}.log") for i in range(2)]
    try:
        for w in workers:
            w.wait_ready()
        wait_for_members(kafka, group, 2)  # the second join's rebalance has settled
        batch = artworks[:120]
        publish(kafka, [(topics.created, a.encode(), created(a, m)) for a, m in batch])
        read_until(kafka, topics.suggestions, lambda rs: len(ids(rs)) >= len(batch), timeout_s=120)
        time.sleep(2)  # a second answer to any artwork would arrive in this window
        out = read_all(kafka, topics.suggestions)
    finally:
        for w in workers:
            assert w.stop() == 0, w.log()[-3000:]
    # Every artwork once, by artwork id and by suggestion id: no artwork missed, none tagged twice.
    per_artwork = {}
    for r in out:
        per_artwork.setdefault(r["artwork_id"], []).append(r["suggestion_id"])
    assert set(per_artwork) == {a for a, _ in batch}
    assert {a: len(s) for a, s in per_artwork.items() if len(s) != 1} == {}
    hashes = {a: content_hash(m) for a, m in batch}
    assert all(r["suggestion_id"] == expected_id(r, hashes[r["artwork_id"]]) for r in out)
    # Each worker tagged its own partitions' artworks: the two shares are disjoint and cover the batch.
    shares = [{m.group(1): (int(m.group(3)), m.group(4)) for m in PUBLISHED_LINE.finditer(w.log())}
              for w in workers]
    print(f"artworks tagged per worker: {[len(s) for s in shares]}")
    assert all(shares), [len(s) for s in shares]
    assert not set(shares[0]) & set(shares[1])
    assert set(shares[0]) | set(shares[1]) == set(per_artwork)
    partitions = [{p for p, _ in s.values()} for s in shares]
    assert not partitions[0] & partitions[1], partitions  # a partition belongs to one worker
    by_id = {r["artwork_id"]: r["suggestion_id"] for r in out}
    assert all(by_id[a] == sid for share in shares for a, (_, sid) in share.items())


# -- backfill ----------------------------------------------------------------------------------------


def test_backfill_resumes_from_its_checkpoint_and_reports_bad_rows(kafka_settings, sample_catalogue, tmp_path):
    import gzip

    from arttag_stream.backfill import backfill

    create_topics(kafka_settings)
    lines = gzip.open(sample_catalogue, "rt").read().splitlines()[:30]
    lines.insert(5, "{not json")
    lines.insert(12, json.dumps({"id": 1, "title": ""}))
    catalogue = tmp_path / "cat.jsonl"
    catalogue.write_text("\n".join(lines) + "\n")
    ckpt = tmp_path / "ckpt.json"
    first = backfill(kafka_settings, catalogue, checkpoint=ckpt, limit=10, progress=False)
    assert first.published == 10 and len(first.bad_rows) == 1 and first.bad_rows[0].line == 6
    second = backfill(kafka_settings, catalogue, checkpoint=ckpt, progress=False, rate=200)
    assert second.published == 20 and second.resumed_after_line == 11
    assert [b.line for b in second.bad_rows] == [13]
    assert second.elapsed_s >= 20 / 200 * 0.8  # the rate limit holds
    topic = StreamTopics.for_prefix(kafka_settings.topic_prefix).created
    records = read_until(kafka_settings, topic, lambda rs: len(rs) >= 30)
    assert len({r["artwork_id"] for r in records}) == 30 == len(records)
    assert all(r["_key"] == r["artwork_id"].encode() for r in records)
