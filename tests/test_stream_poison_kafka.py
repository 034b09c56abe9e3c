"""The real worker process against the real broker: poison messages, and restart after kill -9.

The helpers (publishing, reading topics) are those of tests/test_stream_kafka.py.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from arttag import limits
from arttag.catalogue.records import iter_catalogue
from arttag.events import DeadLetter
from arttag.kafka.admin import create_topics
from arttag.kafka.topics import DEAD_LETTERS, TOPICS, StreamTopics
from arttag.settings import KafkaSettings

pytestmark = pytest.mark.kafka

_spec = importlib.util.spec_from_file_location(
    "arttag_test_stream_kafka_helpers", Path(__file__).with_name("test_stream_kafka.py"))
_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_helpers)
publish, read_until, created = _helpers.publish, _helpers.read_until, _helpers.created


class Worker:
    """`python -m arttag_stream` with the production session timeout unless told otherwise."""

    def __init__(self, kafka: KafkaSettings, bundle: Path, group: str, log_path: Path, **env: str) -> None:
        self.log_path = log_path
        environment = {
            **os.environ,
            "ARTTAG_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "ARTTAG_KAFKA__TOPIC_PREFIX": kafka.topic_prefix,
            "ARTTAG_BUNDLE_DIR": str(bundle),
            "ARTTAG_ENCODER_KIND": "hashing",
            "ARTTAG_CONSUMER_GROUP": group,
            "ARTTAG_METRICS_PORT": "0",
            "ARTTAG_COMMIT_INTERVAL_S": "0.5",
            "ARTTAG_BATCH_MAX_MS": "100",
            "ARTTAG_DATA_DIR": str(log_path.parent / "data"),
            **env,
        }
        with open(log_path, "ab") as fh:
            self.proc = subprocess.Popen([sys.executable, "-m", "arttag_stream"], env=environment,
                                         stdout=fh, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> None:
        assert self.proc.poll() is None, self.log()[-3000:]

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while "Worker ready" not in self.log():
            self.alive()
            assert time.monotonic() < deadline, self.log()[-3000:]
            time.sleep(0.2)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="module")
def artworks(sample_catalogue):
    out = []
    for record in iter_catalogue(sample_catalogue):
        out.append((record.artwork_id, record.metadata))
        if len(out) >= 20:
            break
    return out


def test_poison_messages_do_not_stop_the_worker(kafka_settings, hashing_bundle_dir, artworks, tmp_path):
    create_topics(kafka_settings)
    topics = StreamTopics.for_prefix(kafka_settings.topic_prefix)
    valid = json.loads(created("V1", artworks[0][1]))
    huge_id = json.dumps({**valid, "artwork_id": "A" * 400_000}).encode()
    deep = b'{"a":' * 1000 + b"1" + b"}" * 1000
    not_json = os.urandom(450_000).hex().encode()  # 900 KB
    poison = [
        (topics.created, b"deep", deep),
        (topics.created, b"big", not_json),
        (topics.created, b"huge-id", huge_id),
        (topics.updated, b"surrogate", json.dumps(valid).replace('"V1"', '"\\ud800"').encode()),
        (topics.created, b"K" * 400_000, b"{"),  # a key far larger than any dead letter keeps
    ]
    good = artworks[1:9]
    where = publish(kafka_settings, poison + [(topics.created, a.encode(), created(a, m)) for a, m in good])
    worker = Worker(kafka_settings, hashing_bundle_dir, f"g-{uuid.uuid4().hex[:6]}", tmp_path / "w.log",
                    ARTTAG_SESSION_TIMEOUT_S="6", ARTTAG_HEARTBEAT_INTERVAL_S="1")
    try:
        out = read_until(kafka_settings, topics.suggestions,
                         lambda rs: {a for a, _ in good} <= {r["artwork_id"] for r in rs},
                         timeout_s=180, check=worker.alive)
        dead = read_until(kafka_settings, topics.dead_letters, lambda rs: len(rs) >= len(poison),
                          check=worker.alive)
        worker.alive()
    finally:
        assert worker.stop() == 0, worker.log()[-3000:]
    assert {r["artwork_id"] for r in out} == {a for a, _ in good}
    sent = {w: (key, value) for (_, key, value), w in zip(poison, where)}
    reasons = {}
    for record in dead:
        d = DeadLetter.model_validate({k: v for k, v in record.items() if not k.startswith("_")})
        key, value = sent[(d.topic, d.partition, d.offset)]
        assert d.original_value_sha256 == hashlib.sha256(value).hexdigest()
        assert d.original_value_length == len(value) and d.original_key_length == len(key)
        assert value.startswith(d.original_value()) and key.startswith(d.original_key())
        assert d.truncated == (len(value) + len(key) > 300_000)
        assert len(record["_key"]) <= limits.DEAD_LETTER_PREFIX_BYTES
        reasons[key[:10]] = d.error_type
    assert reasons == {b"deep": "invalid_json", b"big": "too_large", b"huge-id": "schema",
                       b"surrogate": "invalid_json", b"K" * 10: "invalid_json"}
    assert "exiting" not in worker.log()


def test_a_worker_killed_with_sigkill_and_restarted_tags_again(kafka_settings, hashing_bundle_dir,
                                                               artworks, tmp_path):
    """Static membership: the restarted worker takes over its own place in the group at once.

    Without it the new process could not consume until the broker gave up on the killed
    member, one session timeout after its last heartbeat. The session timeout here is three
    times the production one, so that the process's own start-up (imports, bundle, state: 10 s
    on a quiet 2-core machine, 25 s with four test runs sharing it) stays well below half of it,
    while a wait for the session would not.
    """
    create_topics(kafka_settings)
    topics = StreamTopics.for_prefix(kafka_settings.topic_prefix)
    group = f"g-{uuid.uuid4().hex[:6]}"
    session_timeout_s = 90.0
    env = {"ARTTAG_GROUP_INSTANCE_ID": f"worker-{uuid.uuid4().hex[:6]}",
           "ARTTAG_SESSION_TIMEOUT_S": str(session_timeout_s)}

    def tagged(aid: str) -> None:
        read_until(kafka_settings, topics.suggestions, lambda rs: any(r["artwork_id"] == aid for r in rs),
                   timeout_s=180, check=worker.alive)

    (a1, m1), (a2, m2) = artworks[10], artworks[11]
    worker = Worker(kafka_settings, hashing_bundle_dir, group, tmp_path / "w1.log", **env)
    try:
        worker.wait_ready()
        publish(kafka_settings, [(topics.created, a1.encode(), created(a1, m1))])
        tagged(a1)
    finally:
        worker.stop(signal.SIGKILL)
    restarted = time.monotonic()
    worker = Worker(kafka_settings, hashing_bundle_dir, group, tmp_path / "w2.log", **env)
    try:
        worker.wait_ready()  # faust logs it once the group assigned the partitions
        ready_s = time.monotonic() - restarted
        publish(kafka_settings, [(topics.created, a2.encode(), created(a2, m2))])
        tagged(a2)
        recovery_s = time.monotonic() - restarted
    finally:
        assert worker.stop() == 0, worker.log()[-3000:]
    print(f"restarted worker ready after {ready_s:.1f}s; new event tagged {recovery_s:.1f}s after the restart")
    assert recovery_s < session_timeout_s / 2, (
        f"{recovery_s:.1f}s from the restart to the next suggestion: the worker waited for the "
        f"killed member's session ({session_timeout_s:.0f}s) instead of taking its place")


def test_a_dead_letter_the_broker_refuses_as_too_large_does_not_stop_the_worker_for_good(
        kafka_settings, hashing_bundle_dir, artworks, tmp_path):
    """The dead-letter topic takes records of 20,000 bytes; a 30 KB message that is not JSON
    makes a 40 KB dead letter, within ARTTAG_MAX_RECORD_BYTES. The broker refuses it on every
    try, and each refusal counts as an attempt (ARTTAG_MAX_ATTEMPTS=2): refused twice as
    invalid JSON, once more when given up whole, then given up with only its first bytes."""
    small = {"max.message.bytes": "20000"}
    create_topics(kafka_settings, tuple(replace(spec, extra_config={**spec.extra_config, **small})
                                        if spec.name == DEAD_LETTERS else spec for spec in TOPICS))
    topics = StreamTopics.for_prefix(kafka_settings.topic_prefix)
    poison = os.urandom(15_000).hex().encode()
    (a1, m1), (a2, m2) = artworks[12], artworks[13]
    where = publish(kafka_settings, [(topics.created, a1.encode(), created(a1, m1)),
                                     (topics.created, b"p", poison),
                                     (topics.created, a2.encode(), created(a2, m2))])
    env = {"ARTTAG_MAX_ATTEMPTS": "2", "ARTTAG_GROUP_INSTANCE_ID": f"worker-{uuid.uuid4().hex[:6]}"}
    group, log_path = f"g-{uuid.uuid4().hex[:6]}", tmp_path / "w.log"
    lives = {"worker": Worker(kafka_settings, hashing_bundle_dir, group, log_path, **env), "exits": []}

    def restart_when_exited() -> None:
        worker = lives["worker"]
        if worker.proc.poll() is not None:
            lives["exits"].append(worker.proc.returncode)
            assert len(lives["exits"]) <= 4, worker.log()[-3000:]
            lives["worker"] = Worker(kafka_settings, hashing_bundle_dir, group, log_path, **env)

    try:
        [dead] = read_until(kafka_settings, topics.dead_letters, lambda rs: len(rs) >= 1, timeout_s=400,
                            check=restart_when_exited)
        out = read_until(kafka_settings, topics.suggestions,
                         lambda rs: {a1, a2} <= {r["artwork_id"] for r in rs}, timeout_s=120,
                         check=restart_when_exited)
        lives["worker"].alive()
    finally:
        assert lives["worker"].stop() == 0, lives["worker"].log()[-3000:]
    assert lives["exits"] == [70, 70, 70]
    d = DeadLetter.model_validate({k: v for k, v in dead.items() if not k.startswith("_")})
    assert (d.topic, d.partition, d.offset) == where[1]
    assert (d.error_type, d.attempts, d.truncated) == ("repeated-failure", 3, True)
    assert d.original_value_sha256 == hashlib.sha256(poison).hexdigest() and poison.startswith(d.original_value())
    assert {r["artwork_id"] for r in out} == {a1, a2}
    log = lives["worker"].log()
    assert log.count("refused 1 of") == 3
    assert log.count(f"counted as an attempt of {where[1][0]}[{where[1][1]}]@{where[1][2]}") == 3
