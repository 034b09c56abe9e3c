"""docker-compose.yml: structure checked always; `docker compose config` where the plugin exists."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

COMPOSE = Path(__file__).resolve().parents[1] / "docker-compose.yml"


def test_compose_file_has_kafka_topic_init_and_services_with_healthchecks():
    doc = yaml.safe_load(COMPOSE.read_text())
    services = doc["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["topic-init"]["command"] == ["topics", "create"]
    for name in ("kafka", "stream", "api"):
        assert "healthcheck" in services[name], name
    assert services["curate"]["command"] == ["curate"]
    assert "${ARTTAG_API_KEY_HASHES:?" in COMPOSE.read_text()
    assert "${ARTTAG_MODELS_DIR:?" in COMPOSE.read_text()


def _compose_command() -> list[str] | None:
    """`docker compose` (v2 plugin) where installed, else the standalone `docker-compose`."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"],
                                                 capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


COMPOSE_CMD = _compose_command()


@pytest.mark.skipif(COMPOSE_CMD is None, reason="no docker compose client installed")
def test_docker_compose_config_validates_and_requires_settings(tmp_path):
    base = {"PATH": "/usr/bin:/bin:/usr/local/bin"}
    env = {**base, "ARTTAG_MODELS_DIR": str(tmp_path), "ARTTAG_API_KEY_HASHES": "[]"}
    ok = subprocess.run([*COMPOSE_CMD, "-f", str(COMPOSE), "config"],
                        capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    # what compose resolves: the curation processor, and the state volume the API shares with it
    resolved = yaml.safe_load(ok.stdout)
    assert set(resolved["services"]) == {"kafka", "topic-init", "stream", "api", "curate"}
    assert "arttag-state" in resolved["volumes"]
    for name in ("api", "curate"):
        mounts = [str(v) for v in resolved["services"][name]["volumes"]]
        assert any("arttag-state" in m and "/var/lib/arttag" in m for m in mounts), (name, mounts)
    missing = subprocess.run([*COMPOSE_CMD, "-f", str(COMPOSE), "config", "-q"],
                             capture_output=True, text=True, env=base)
    assert missing.returncode != 0
    assert "ARTTAG_" in missing.stderr
