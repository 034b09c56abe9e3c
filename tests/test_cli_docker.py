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
                 "shared/arttag/__pycache__/x.pyc", "bench/results/quality.json",
                 "node_modules/axe-core/axe.min.js"):
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
    [volume] = [v for v in base["volumes"] if v.startswith("${ARTTAG_MODELS_DIR")]
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


def _image_env() -> dict[str, str]:
    return dict(re.findall(r"(ARTTAG_\w+)=(\S+)", DOCKERFILE.read_text()))


def _mount_of(path: str, volumes: list[str]) -> tuple[str, str, str]:
    """(source, target, mode) of the mount holding ``path``; the longest target wins."""
    mounts = []
    for volume in volumes:
        source, target, *mode = volume.split(":")
        if source.startswith("${"):  # ${VAR:?message}:/target:ro
            source, target, *mode = volume.rsplit(":", 2)
        mounts.append((source, target, mode[0] if mode else "rw"))
    holding = [m for m in mounts if PurePosixPath(path).is_relative_to(m[1])]
    assert holding, f"{path} is on no mounted volume: {volumes}"
    return max(holding, key=lambda m: len(m[1]))


def test_what_the_containers_write_is_on_a_shared_writable_volume():
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services, named = doc["services"], set(doc["volumes"])
    assert services["curate"]["command"] == ["curate"]
    image = _image_env()
    url = image["ARTTAG_CURATION_DATABASE_URL"]
    assert url.startswith("sqlite:////")  # an absolute path, on the volume checked below
    database = url.removeprefix("sqlite:///")
    data_dir = image["ARTTAG_DATA_DIR"]
    for name, writes in (("api", [database]), ("curate", [database]), ("stream", [data_dir])):
        environment, volumes = services[name]["environment"], services[name]["volumes"]
        # the compose file and the image agree, so `docker run` of the image writes there too
        assert environment["ARTTAG_CURATION_DATABASE_URL"] == url, name
        assert environment["ARTTAG_DATA_DIR"] == data_dir, name
        for path in writes:
            source, _, mode = _mount_of(path, volumes)
            assert source in named and mode == "rw", (name, path, source, mode)
    # the API reads the database curate writes: the same volume at the same place
    assert _mount_of(database, services["api"]["volumes"]) == _mount_of(database, services["curate"]["volumes"])
