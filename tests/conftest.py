"""Shared fixtures: the sample catalogue, and the real Kafka broker for `kafka`-marked tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
from arttag.settings import KafkaSettings

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "shared" / "arttag" / "data" / "tate_sample.jsonl.gz"


@pytest.fixture
def worker_lives(tmp_path):
    """Runs a worker script (``argv``: its in-flight folder, its output file) again and again, as
    restarts would, until it exits 0; returns the exit codes and the JSON lines it wrote."""

    def run(script_text: str, max_lives: int = 6) -> tuple[list[int], list]:
        script = tmp_path / "worker.py"
        script.write_text(script_text)
        out = tmp_path / "published.jsonl"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "shared"), str(REPO / "services")])}
        codes: list[int] = []
        while not codes or codes[-1] != 0:
            codes.append(subprocess.run([sys.executable, str(script), str(tmp_path / "inflight"), str(out)],
                                        env=env, capture_output=True).returncode)
            assert len(codes) <= max_lives, codes
        return codes, [json.loads(line) for line in out.read_text().splitlines()]

    return run


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def sample_catalogue() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The broker `.ci/run` started, or one this session starts (and stops) with deploy/kafka."""
    bootstrap = os.environ.get("ARTTAG_TEST_KAFKA", "127.0.0.1:9092")
    host, port = bootstrap.rsplit(":", 1)
    started = False
    if not _reachable(host, int(port)):
        subprocess.run([str(REPO / "deploy" / "kafka" / "kafka.sh"), "start"], check=True)
        started = True
    yield bootstrap
    if started:
        subprocess.run([str(REPO / "deploy" / "kafka" / "kafka.sh"), "stop"], check=False)


@pytest.fixture
def kafka_settings(kafka_bootstrap: str) -> KafkaSettings:
    """Settings with a unique topic prefix, so tests never see each other's messages."""
    return KafkaSettings(
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"test-{uuid.uuid4().hex[:8]}.",
        partitions=2,
    )


@pytest.fixture(scope="session")
def hashing_bundle_dir(tmp_path_factory, sample_catalogue) -> Path:
    """A real bundle trained once per session on the sample with the hashing encoder (no download)."""
    from arttag.encoders import HashingEncoder
    from arttag.model.training import train_bundle

    out = tmp_path_factory.mktemp("hashing-bundle") / "bundle"
    train_bundle(sample_catalogue, out, HashingEncoder(), {"evaluate": False})
    return out


@pytest.fixture(scope="session")
def tiny_mpnet_dir(tmp_path_factory) -> Path:
    """A tiny random MPNet saved as a sentence-transformers folder (stands in for the fetched model)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from arttag.encoders.export import calibration_texts
    from arttag.encoders.tiny import build_tiny_mpnet

    out = tmp_path_factory.mktemp("tiny-model") / "tiny-mpnet"
    return build_tiny_mpnet(out, calibration_texts(300))


@pytest.fixture(scope="session")
def tiny_onnx_dir(tiny_mpnet_dir: Path) -> Path:
    """The tiny model exported through the same code as `arttag model export` (fp32 + int8, manifest).

    Use it with ``EncoderSettings(model_dir=tiny_mpnet_dir)`` (its ``resolved_onnx_dir`` is this folder).
    """
    from arttag.encoders.export import calibration_texts, export_onnx

    out = tiny_mpnet_dir.with_name(tiny_mpnet_dir.name + "-onnx")
    export_onnx(tiny_mpnet_dir, out, texts=calibration_texts(64), progress=False)
    return out


def _postgres_binaries() -> bool:
    return any(Path(p).joinpath("initdb").exists() for p in Path("/usr/lib/postgresql").glob("*/bin"))


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """A PostgreSQL server's URL: ``ARTTAG_TEST_POSTGRES_URL`` (`.ci/run` starts one), or a
    throw-away cluster this session starts (and stops) with deploy/postgres/pg.sh. In CI (``CI``
    set) a missing server fails the test; elsewhere it is skipped."""
    url = os.environ.get("ARTTAG_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    if not _postgres_binaries():
        message = "no PostgreSQL: set ARTTAG_TEST_POSTGRES_URL or apt-get install postgresql"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI needs it)")
        pytest.skip(message)
    script = REPO / "deploy" / "postgres" / "pg.sh"
    # not under pytest's tmp dir: that is private to the user, and under root the cluster runs as another
    env = {**os.environ, "PG_RUN_DIR": f"{tempfile.gettempdir()}/arttag-test-pg-{uuid.uuid4().hex[:8]}"}
    url = subprocess.run([str(script), "start"], check=True, env=env, capture_output=True,
                         text=True).stdout.strip()
    yield url
    subprocess.run([str(script), "stop"], check=False, env=env)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database on the PostgreSQL server, dropped after the test."""
    import sqlalchemy as sa

    name = f"arttag_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield sa.make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> str:
    """The curation database on each supported backend: an SQLite file, and PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'curation.db'}"
    return request.getfixturevalue("postgres_url")
