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
    assert "${ARTTAG_API_KEY_HASHES:?" in COMPOSE.read_text()
    assert "${ARTTAG_MODELS_DIR:?" in COMPOSE.read_text()


def _has_compose() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _has_compose(), reason="docker compose plugin not installed")
def test_docker_compose_config_validates(tmp_path):
    env = {"ARTTAG_MODELS_DIR": str(tmp_path), "ARTTAG_API_KEY_HASHES": "[]", "PATH": "/usr/bin:/bin:/usr/local/bin"}
    result = subprocess.run(["docker", "compose", "-f", str(COMPOSE), "config", "-q"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
