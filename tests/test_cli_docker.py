"""Docker: the build context keeps out what the image does not need, and the containers read the layout the CLI writes."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path, PurePosixPath

import yaml
from arttag.settings import CliSettings, default_cache_dir

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"


def _ignored(path: str, patterns: list[str]) -> bool:
    parts = PurePosixPath(path).parts
    for pattern in patterns:
        pattern = pattern.removeprefix("**/")
        for i in range(len(parts)):
            if fnmatch.fnmatch("/".join(parts[: i + 1]), pattern) or fnmatch.fnmatch(parts[i], pattern):
                return True
    return False


def _patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_dockerignore_keeps_out_local_state_and_keeps_what_the_image_copies():
    patterns = _patterns()
    for path in (".venv/bin/python", ".cache/embeddings/x.npz", "deploy/kafka/run/kafka.log", ".git/HEAD",
                 "shared/arttag/__pycache__/x.pyc", "bench/results/quality.json"):
        assert _ignored(path, patterns), path
    copied = [src for line in DOCKERFILE.read_text().splitlines() if line.startswith("COPY ")
              for src in line.split()[1:-1]]
    assert {"pyproject.toml", "README.md", "shared", "services", "schemas"} <= set(copied)
    for src in copied:
        assert not _ignored(src, patterns), src
    for path in ("shared/arttag/events.py", "services/arttag_cli/main.py", "schemas/artwork-created.v1.json",
                 "shared/arttag/data/tate_sample.jsonl.gz"):
        assert not _ignored(path, patterns), path


def _in_container(host_default: Path, mount: str) -> str:
    return f"{mount}/{host_default.relative_to(default_cache_dir()).as_posix()}"


def test_containers_read_the_layout_the_cli_writes(monkeypatch):
    for name in ("ARTTAG_BUNDLE_DIR", "ARTTAG_ENCODER__MODEL_DIR", "ARTTAG_ENCODER__ONNX_DIR"):
        monkeypatch.delenv(name, raising=False)
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    base = doc["x-arttag"]
    [volume] = base["volumes"]
    source, mount, mode = volume.rsplit(":", 2)
    assert source.startswith("${ARTTAG_MODELS_DIR:?") and mode == "ro"
    defaults = CliSettings()
    expected = {
        "ARTTAG_BUNDLE_DIR": _in_container(defaults.bundle_dir, mount),
        "ARTTAG_ENCODER__MODEL_DIR": _in_container(defaults.encoder.model_dir, mount),
        "ARTTAG_ENCODER__ONNX_DIR": _in_container(defaults.encoder.resolved_onnx_dir, mount),
    }
    assert expected["ARTTAG_BUNDLE_DIR"] == "/arttag/bundles/current"
    for key, value in expected.items():
        assert base["environment"][key] == value, key
    for service in ("stream", "api"):
        environment = doc["services"][service]["environment"]
        assert {k: environment[k] for k in expected} == expected, service
        assert doc["services"][service]["volumes"] == base["volumes"]
    # the image's own defaults are the same paths
    env = dict(re.findall(r"(ARTTAG_\w+)=(\S+)", DOCKERFILE.read_text()))
    assert {k: env[k] for k in expected} == expected
