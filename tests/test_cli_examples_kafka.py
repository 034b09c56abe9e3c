"""The README's "What to try next" block runs as written against the real broker: topics, the
worker, a backfill, tail, the API with the curl request's own payload, and curate.

Each `arttag` line runs as its own process (`python -m arttag_cli`, what `.venv/bin/arttag`
calls), lines ending in `&` in the background, in the block's order. What a fresh machine
would have after the demo comes from the environment instead: a unique topic prefix (the
broker is shared), the session's hashing bundle as `ARTTAG_BUNDLE_DIR`, a free port, a
curation database and a cache folder under the test's folder. The audit, suggest and train
lines need no broker: tests/test_cli_examples.py runs them.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from arttag_api.auth import hash_api_key

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[1]
CURATOR_KEY = "readme-curator-key"
# what this test runs of the block; the rest is run elsewhere or is a placeholder
RUN_HERE = ("topics", "stream", "backfill", "tail", "api", "curl", "curate")
RUN_ELSEWHERE = ("audit", "suggest", "train", "./run.sh")


def _next_steps_block() -> list[str]:
    """The command lines of the README's "What to try next" block (comments stripped)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## What to try next", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.DOTALL).group(1)
    return [line.split(" #")[0].strip() for line in block.splitlines() if line.strip()]


def _verb(line: str) -> str:
    words = shlex.split(line)
    return words[1] if words[0].endswith("/arttag") else words[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
          timeout_s: float = 30.0) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _curl(line: str, port: int) -> tuple[int, dict]:
    """Send the request a `curl -s URL -H ... -d ...` line describes (to this test's port)."""
    words = shlex.split(line)[1:]
    url, headers, data = None, {}, None
    i = 0
    while i < len(words):
        if words[i] == "-H":
            name, value = words[i + 1].split(":", 1)
            headers[name.strip()] = value.strip()
            i += 2
        elif words[i] in ("-d", "--data"):
            data = words[i + 1].encode()
            i += 2
        elif words[i].startswith("-"):
            i += 1
        else:
            url = words[i]
            i += 1
    assert url and url.startswith("localhost:8000/"), line  # the API's default address
    return _http("POST" if data is not None else "GET", f"http://127.0.0.1:{port}{url[len('localhost:8000'):]}",
                 data, headers)


def _wait(predicate, timeout_s: float, what: str, logs=lambda: ""):
    deadline = time.monotonic() + timeout_s  # a bound on waiting, not an assertion on speed
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}\n{logs()}"
        time.sleep(0.3)


def _ready(port: int) -> bool:
    try:
        status, body = _http("GET", f"http://127.0.0.1:{port}/readyz", timeout_s=5)
    except OSError:  # not listening yet
        return False
    return status == 200 and body["ready"]


def test_readme_next_steps_run_against_the_broker(kafka_bootstrap, hashing_bundle_dir, tmp_path, monkeypatch):
    lines = _next_steps_block()
    verbs = [_verb(line) for line in lines]
    assert [v for v in verbs if v in RUN_HERE] == list(RUN_HERE), verbs  # the block's order
    assert set(verbs) <= set(RUN_HERE) | set(RUN_ELSEWHERE), verbs

    monkeypatch.chdir(ROOT)  # the block's paths are relative to the checkout
    port = _free_port()
    run_id = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "shared"), str(ROOT / "services")]),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "ARTTAG_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
        "ARTTAG_KAFKA__TOPIC_PREFIX": f"test-readme-{run_id}.",
        "ARTTAG_KAFKA__PARTITIONS": "2",
        # the groups are the broker's, not the prefix's: other tests' workers must not join them
        "ARTTAG_CONSUMER_GROUP": f"readme-stream-{run_id}",
        "ARTTAG_CURATE_GROUP": f"readme-curate-{run_id}",
        "ARTTAG_BUNDLE_DIR": str(hashing_bundle_dir),
        "ARTTAG_PORT": str(port),
        "ARTTAG_METRICS_PORT": "0",
        "ARTTAG_CURATION_DATABASE_URL": f"sqlite:///{tmp_path / 'curation.db'}",
        "ARTTAG_CURATORS": json.dumps({"readme-curator": hash_api_key(CURATOR_KEY)}),
        "ARTTAG_SESSION_TIMEOUT_S": "10",
        "ARTTAG_HEARTBEAT_INTERVAL_S": "1",
    }
    background: dict[str, tuple[subprocess.Popen, Path]] = {}
    outputs: dict[str, str] = {}

    def logs() -> str:
        return "\n".join(f"--- {v} log:\n{path.read_text(errors='replace')[-3000:]}"
                         for v, (_, path) in background.items())

    try:
        for line, verb in zip(lines, verbs, strict=True):
            if verb not in RUN_HERE:
                continue
            if verb == "curl":
                status, body = _curl(line, port)
                assert status == 200, body
                assert body["suggestions"] and all(s["label"] and s["explanation"] for s in body["suggestions"])
                continue
            argv = [sys.executable, "-m", "arttag_cli", *shlex.split(line.rstrip("&").strip())[1:]]
            if line.endswith("&"):
                log_path = tmp_path / f"{verb}.log"
                with open(log_path, "wb") as fh:
                    background[verb] = (subprocess.Popen(argv, env=env, stdout=fh, stderr=subprocess.STDOUT),
                                        log_path)
                # a person types the next line after the process has started; wait as long as it needs
                if verb == "stream":
                    _wait(lambda: "Worker ready" in background["stream"][1].read_text(errors="replace")
                          or background["stream"][0].poll() is not None, 90, "the worker", logs)
                else:
                    _wait(lambda: _ready(port) or background["api"][0].poll() is not None, 90, "the API", logs)
                assert background[verb][0].poll() is None, logs()
                continue
            if verb == "curate":
                _give_feedback(port)
            done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}\n{logs()}"
            outputs[verb] = done.stdout

        assert "created" in outputs["topics"]
        assert re.search(r"published 50 events", outputs["backfill"]), outputs["backfill"]
        # five records of the suggestions topic, each printed after its topic[partition]@offset
        assert len(re.findall(rf"test-readme-{run_id}\.tags\.suggestions\.v1\[\d+\]@\d+", outputs["tail"])) == 5, \
            outputs["tail"]
        assert re.search(r"feedback events: 1\b.*decisions records published: 1\b", outputs["curate"]), \
            outputs["curate"]
    finally:
        for proc, _ in background.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        _delete_topics(kafka_bootstrap, f"test-readme-{run_id}.")


def _give_feedback(port: int) -> None:
    """A curator accepts a tag of a backfilled artwork, as the review desk would, so that
    `curate` has feedback to fold (the block's curl only asks for suggestions)."""
    from arttag.catalogue.records import iter_catalogue

    base = f"http://127.0.0.1:{port}"
    first = next(iter_catalogue(ROOT / "shared" / "arttag" / "data" / "tate_sample.jsonl.gz")).artwork_id
    # the API's latest view has read what the worker published for it
    latest = _wait(lambda: (r := _http("GET", f"{base}/v1/artworks/{first}/suggestions"))[0] == 200 and r[1],
                   60, f"the latest suggestions of {first}")
    top = latest["suggestions"][0]
    status, body = _http("POST", f"{base}/v1/feedback", json.dumps({
        "artwork_id": first, "tag_id": top["tag_id"], "action": "accepted",
        "suggestion_id": latest["suggestion_id"], "model_version": latest["model_version"],
    }).encode(), {"content-type": "application/json", "X-API-Key": CURATOR_KEY})
    assert status == 202, body


def _delete_topics(bootstrap: str, prefix: str) -> None:
    from arttag.kafka.admin import admin_client
    from arttag.settings import KafkaSettings

    admin = admin_client(KafkaSettings(bootstrap_servers=bootstrap))
    names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    if names:
        for future in admin.delete_topics(names, operation_timeout=30).values():
            future.result()
