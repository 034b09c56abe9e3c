"""The torch-free ONNX encoder against sentence-transformers, on the tiny random MPNet."""

from __future__ import annotations

import numpy as np
import pytest
from arttag.encoders import TextEncoder, load_encoder
from arttag.encoders.cache import CachedEncoder
from arttag.encoders.export import calibration_texts
from arttag.encoders.manifest import read_manifest
from arttag.encoders.onnx import OnnxEncoder, mean_pool_normalize
from arttag.errors import ModelError
from arttag.settings import EncoderSettings

EDGE_TEXTS = [
    "",
    "Town on Hill",
    "Ça va? Überfahrt nach Skagen, 1887 – Krøyer. 東京の風景",
    "a " * 500 + "very long text that must be truncated",
    "   ",
]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return calibration_texts(120, seed=7) + EDGE_TEXTS


@pytest.fixture(scope="module")
def reference(tiny_mpnet_dir, texts) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_mpnet_dir), device="cpu")
    return model.encode(texts, batch_size=16, convert_to_numpy=True)


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_manifest_describes_the_export(tiny_onnx_dir, tiny_mpnet_dir):
    manifest = read_manifest(tiny_onnx_dir)
    assert set(manifest.variants) == {"fp32", "int8"}
    assert manifest.pooling == "mean" and manifest.normalize
    assert manifest.embedding_dim == 32 and manifest.max_length == 64
    assert manifest.inputs == ["input_ids", "attention_mask"]
    assert "static" in manifest.variants["int8"].quantization["name"]
    assert "onnxruntime" in manifest.libraries
    assert len(manifest.source_sha256) == 64


def test_fp32_matches_sentence_transformers(tiny_onnx_dir, texts, reference):
    encoder = OnnxEncoder(tiny_onnx_dir, "fp32", batch_size=8)
    vectors = encoder.encode(texts)
    assert vectors.shape == (len(texts), 32) and vectors.dtype == np.float32
    assert _cos(vectors, reference).min() >= 0.9999
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_int8_stays_close_to_fp32(tiny_onnx_dir, texts, reference):
    vectors = OnnxEncoder(tiny_onnx_dir, "int8").encode(texts)
    cos = _cos(vectors, reference)
    assert cos.mean() >= 0.995 and cos.min() >= 0.98


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_embedding_does_not_depend_on_the_batch(tiny_onnx_dir, texts, variant):
    encoder = OnnxEncoder(tiny_onnx_dir, variant, batch_size=32)
    batched = encoder.encode(texts)
    alone = np.stack([encoder.encode([t])[0] for t in texts[:40] + EDGE_TEXTS])
    assert _cos(alone, np.concatenate([batched[:40], batched[-len(EDGE_TEXTS):]])).min() >= 0.9999


def test_order_is_kept_and_long_texts_are_truncated(tiny_onnx_dir):
    encoder = OnnxEncoder(tiny_onnx_dir, "fp32", batch_size=2)
    long_text = "painting of the sea " * 200
    assert len(encoder.tokenize([long_text])[0]) == 64
    texts = ["short", long_text, "medium length title of a work", ""]
    together = encoder.encode(texts)
    for i, text in enumerate(texts):
        assert float(together[i] @ encoder.encode([text])[0]) >= 0.9999
    assert np.isfinite(together).all()
    assert encoder.encode([]).shape == (0, 32)


def test_name_identifies_model_and_variant(tiny_onnx_dir, tiny_mpnet_dir):
    assert OnnxEncoder(tiny_onnx_dir, "int8").name == f"{tiny_mpnet_dir.name}/onnx-int8"
    assert OnnxEncoder(tiny_onnx_dir, "fp32").name == f"{tiny_mpnet_dir.name}/onnx-fp32"


def test_load_encoder_from_settings(tiny_mpnet_dir, tiny_onnx_dir):
    settings = EncoderSettings(model_dir=tiny_mpnet_dir, variant="fp32", intra_op_threads=1, execution_provider="cpu")
    encoder = load_encoder(settings)
    assert isinstance(encoder, CachedEncoder) and isinstance(encoder, TextEncoder)
    assert encoder.name.endswith("/onnx-fp32") and encoder.dim == 32
    bare = load_encoder(settings.model_copy(update={"cache_size": 0}))
    assert isinstance(bare, OnnxEncoder)
    np.testing.assert_allclose(encoder.encode(["Town on Hill"]), bare.encode(["Town on Hill"]), atol=1e-6)


def test_missing_export_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="arttag model export"):
        load_encoder(EncoderSettings(model_dir=tmp_path / "nothing"))


def test_mean_pooling_ignores_padding():
    hidden = np.array([[[1.0, 0.0], [3.0, 0.0], [100.0, 100.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0]])
    np.testing.assert_allclose(mean_pool_normalize(hidden, mask, normalize=False), [[2.0, 0.0]])
    np.testing.assert_allclose(mean_pool_normalize(hidden, mask), [[1.0, 0.0]])


def test_buckets_bound_padding(tiny_onnx_dir):
    encoder = OnnxEncoder(tiny_onnx_dir, "fp32", batch_size=32)
    encoder.min_batch_tokens = 50
    lengths = [60] + [10] * 40 + [30] * 5
    buckets = encoder.buckets(lengths)
    assert sorted(i for b in buckets for i in b) == list(range(len(lengths)))
    assert all(len(b) <= 32 for b in buckets)
    assert buckets[0] == [0]  # the long text alone, the short ones no longer padded to 60
    for b in buckets:
        real = sum(lengths[i] for i in b)
        longest = max(lengths[i] for i in b)
        assert longest * len(b) <= real * (1 + encoder.max_padding) or longest * (len(b) - 1) < 50
