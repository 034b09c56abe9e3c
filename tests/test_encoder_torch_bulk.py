"""The torch bulk encoder against the ONNX fp32 encoder, and torch staying off the runtime path."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from arttag.encoders.export import calibration_texts
from arttag.encoders.loader import encoder_choice
from arttag.encoders.onnx import OnnxEncoder
from arttag.encoders.torch_bulk import TorchBulkEncoder
from arttag.errors import ConfigurationError
from arttag.model.bundle import bundle_encoder
from arttag.settings import EncoderSettings, StreamSettings

REPO = Path(__file__).resolve().parents[1]
EDGE = ["", "Town on Hill", "a " * 500 + "truncated", "Ça va? Überfahrt nach Skagen – Krøyer. 東京の風景"]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return calibration_texts(100, seed=7) + EDGE


@pytest.fixture(scope="module")
def onnx_fp32(tiny_onnx_dir, texts) -> np.ndarray:
    return OnnxEncoder(tiny_onnx_dir, "fp32", intra_op_threads=1).encode(texts)


@pytest.mark.parametrize(("dtype", "min_cos"), [("fp32", 0.999), ("bf16", 0.999)])
def test_bulk_matches_the_onnx_fp32_encoder(tiny_mpnet_dir, tiny_onnx_dir, texts, onnx_fp32, dtype, min_cos):
    bulk = TorchBulkEncoder(tiny_mpnet_dir, device="cpu", dtype=dtype, batch_size=16)
    vectors = bulk.encode(texts)
    assert vectors.shape == onnx_fp32.shape and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cos = (vectors * onnx_fp32).sum(axis=1)
    assert cos.min() >= min_cos
    assert bulk.name == OnnxEncoder(tiny_onnx_dir, "fp32").name and bulk.dim == 32


def test_fp32_bulk_is_the_fp32_export_to_rounding(tiny_mpnet_dir, texts, onnx_fp32):
    vectors = TorchBulkEncoder(tiny_mpnet_dir, device="cpu", dtype="fp32", batch_size=64).encode(texts)
    np.testing.assert_allclose(vectors, onnx_fp32, atol=1e-4)


def test_rows_follow_the_caller_and_not_the_batch(tiny_mpnet_dir, texts):
    bulk = TorchBulkEncoder(tiny_mpnet_dir, device="cpu", dtype="fp32", batch_size=8)
    picked = texts[::7]
    alone = np.vstack([bulk.encode([t]) for t in picked])
    np.testing.assert_allclose(bulk.encode(picked), alone, atol=1e-5)
    assert bulk.encode([]).shape == (0, 32)


def test_batches_cap_texts_and_padded_tokens(tiny_mpnet_dir):
    bulk = TorchBulkEncoder(tiny_mpnet_dir, device="cpu", dtype="fp32", batch_size=4, tokens_per_batch=100)
    lengths = [60, 5, 30, 5, 5, 5, 5, 30, 20]
    batches = bulk.batches(lengths)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(len(b) <= 4 and len(b) * lengths[b[0]] <= 100 for b in batches[1:])
    assert batches[0] == [0]  # 60 tokens: a second text would pad past 100
    assert all(lengths[b[0]] == max(lengths[i] for i in b) for b in batches)


def test_cuda_without_a_gpu_is_a_clear_error(tiny_mpnet_dir, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigurationError, match="no CUDA device"):
        TorchBulkEncoder(tiny_mpnet_dir, device="cuda")
    with pytest.raises(ConfigurationError, match="bulk dtype"):
        TorchBulkEncoder(tiny_mpnet_dir, device="cpu", dtype="int4")


def test_bulk_settings(monkeypatch):
    assert EncoderSettings().bulk_device is None
    monkeypatch.setenv("ARTTAG_ENCODER__BULK_DEVICE", "cuda:1")
    monkeypatch.setenv("ARTTAG_ENCODER__BULK_DTYPE", "fp16")
    monkeypatch.setenv("ARTTAG_ENCODER__BULK_BATCH_SIZE", "512")
    encoder = StreamSettings().encoder
    assert (encoder.bulk_device, encoder.bulk_dtype, encoder.bulk_batch_size) == ("cuda:1", "fp16", 512)
    monkeypatch.setenv("ARTTAG_ENCODER__BULK_DEVICE", "tpu")
    with pytest.raises(ValueError, match="bulk_device"):
        StreamSettings()


def test_replay_of_an_fp32_bundle_uses_the_bulk_encoder(tiny_mpnet_dir, tiny_onnx_dir, caplog):
    settings = EncoderSettings(model_dir=tiny_mpnet_dir, bulk_device="cpu", bulk_dtype="fp32", cache_size=0)
    fp32 = {"encoder": {"name": f"{tiny_mpnet_dir.name}/onnx-fp32", "dim": 32}}
    assert isinstance(bundle_encoder(fp32, settings, bulk=True), TorchBulkEncoder)
    assert isinstance(bundle_encoder(fp32, settings), OnnxEncoder)  # the stream and the API never
    int8 = {"encoder": {"name": f"{tiny_mpnet_dir.name}/onnx-int8", "dim": 32}}
    with caplog.at_level(logging.WARNING):
        fallback = bundle_encoder(int8, settings, bulk=True)
    assert isinstance(fallback, OnnxEncoder) and encoder_choice(fallback).variant == "int8"
    assert "bulk encoder not used" in caplog.text


RUNTIME_PROBE = """
import json, sys
from pathlib import Path
import arttag_stream.runner, arttag_stream.app, arttag_stream.replay
import arttag_api.app
import arttag_cli.main
from arttag.encoders.loader import load_encoder
from arttag.model.bundle import open_tagger
from arttag.settings import ApiSettings, CliSettings, EncoderSettings, StreamSettings

for settings in (StreamSettings(), ApiSettings(), CliSettings()):
    assert settings.encoder.bulk_device is None
tagger = open_tagger(Path(sys.argv[1]), StreamSettings().encoder, kind="hashing")
tagger.encoder.encode(["Town on Hill"])
for variant in ("auto", "measure", "int8"):
    load_encoder(EncoderSettings(model_dir=Path(sys.argv[2]), variant=variant)).encode(["Town on Hill"])
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers", "sentence_transformers", "optimum"))))
"""


def test_the_runtime_path_never_imports_torch(hashing_bundle_dir, tiny_mpnet_dir, tiny_onnx_dir):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "shared"), str(REPO / "services")])}
    env = {k: v for k, v in env.items() if not k.startswith("ARTTAG_")}
    done = subprocess.run([sys.executable, "-c", RUNTIME_PROBE, str(hashing_bundle_dir), str(tiny_mpnet_dir)],
                          check=False, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_the_gpu_benchmark_refuses_to_run_without_cuda(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": os.pathsep.join([str(REPO / "shared"), str(REPO / "services")])}
    done = subprocess.run([sys.executable, str(REPO / "bench" / "encoder_gpu.py"), "--out", str(tmp_path / "r.json")],
                          check=False, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode != 0
    assert "CUDA GPU" in done.stderr and "torch sees none" in done.stderr
    assert not (tmp_path / "r.json").exists()
