"""The embedding cache: keyed by text hash, bounded LRU, saved and loaded as .npz."""

from __future__ import annotations

import json

import numpy as np
import pytest
from arttag.encoders import HashingEncoder
from arttag.encoders.cache import CachedEncoder
from arttag.errors import ModelError


class CountingEncoder(HashingEncoder):
    def __init__(self, dim: int = 16) -> None:
        super().__init__(dim)
        self.encoded: list[str] = []

    def encode(self, texts):
        self.encoded.extend(texts)
        return super().encode(texts)


def test_unchanged_texts_are_encoded_once():
    inner = CountingEncoder()
    cached = CachedEncoder(inner, max_size=100)
    first = cached.encode(["a cat", "a dog", "a cat"])
    second = cached.encode(["a dog", "a cat", "a bird"])
    assert inner.encoded == ["a cat", "a dog", "a bird"]
    np.testing.assert_array_equal(first[0], second[1])
    np.testing.assert_array_equal(first, inner.encode(["a cat", "a dog", "a cat"]))
    assert cached.name == inner.name and cached.dim == inner.dim
    assert (cached.hits, cached.misses) == (2, 3)  # a repeat within one call is one miss


def test_lru_is_bounded():
    inner = CountingEncoder()
    cached = CachedEncoder(inner, max_size=2)
    cached.encode(["one", "two"])
    cached.encode(["one"])  # "one" is now the most recent
    cached.encode(["three"])  # evicts "two"
    assert len(cached) == 2
    inner.encoded.clear()
    cached.encode(["one", "two"])
    assert inner.encoded == ["two"]


def test_save_and_load_across_processes(tmp_path):
    texts = [f"artwork {i}" for i in range(50)]
    writer = CachedEncoder(CountingEncoder())
    expected = writer.encode(texts)
    path = writer.save(tmp_path / "emb.npz")

    inner = CountingEncoder()
    reader = CachedEncoder(inner)
    assert reader.load(path) == 50
    np.testing.assert_array_equal(reader.encode(texts), expected)
    assert inner.encoded == []


def test_cache_of_another_encoder_is_refused(tmp_path):
    path = CachedEncoder(CountingEncoder(16)).save(tmp_path / "emb.npz")
    with pytest.raises(ModelError, match="written by"):
        CachedEncoder(CountingEncoder(32)).load(path)


def test_zero_size_caches_nothing():
    inner = CountingEncoder()
    cached = CachedEncoder(inner, max_size=0)
    cached.encode(["x"])
    cached.encode(["x"])
    assert inner.encoded == ["x", "x"] and len(cached) == 0


def test_cache_of_a_reexported_model_is_refused(tmp_path):
    class Versioned(CountingEncoder):
        def __init__(self, fingerprint: str) -> None:
            super().__init__(16)
            self.fingerprint = fingerprint

    path = CachedEncoder(Versioned("aaaa")).save(tmp_path / "emb.npz")
    assert CachedEncoder(Versioned("aaaa")).load(path) == 0
    with pytest.raises(ModelError, match="written by"):
        CachedEncoder(Versioned("bbbb")).load(path)


# -- a cache folder (ARTTAG_ENCODER__CACHE_DIR): warm start, written back at shutdown --------------


def _onnx_settings(tiny_mpnet_dir, cache_dir, **update):
    from arttag.settings import EncoderSettings

    return EncoderSettings(model_dir=tiny_mpnet_dir, intra_op_threads=1, execution_provider="cpu",
                           variant="int8", cache_dir=cache_dir, **update)


def test_a_cache_folder_carries_embeddings_to_the_next_process(tiny_mpnet_dir, tiny_onnx_dir, tmp_path):
    from arttag.encoders.cache import cache_file, model_sha256, persist
    from arttag.encoders.loader import load_encoder

    texts = [f"oil painting of a harbour, number {i}" for i in range(40)]
    folder = tmp_path / "empty"
    cold = load_encoder(_onnx_settings(tiny_mpnet_dir, folder))
    assert len(cold) == 0  # nothing there yet: cold
    expected = cold.encode(texts)
    path = persist(cold, folder)
    assert path == cache_file(folder, cold.name) and path.name == "tiny-mpnet_onnx-int8.npz"
    sidecar = json.loads(path.with_name(path.name + ".json").read_text())
    assert sidecar == {"encoder": cold.name, "model_sha256": model_sha256(cold)} and sidecar["model_sha256"]

    warm = load_encoder(_onnx_settings(tiny_mpnet_dir, folder))
    assert len(warm) == len(texts)
    np.testing.assert_array_equal(warm.encode(texts), expected)
    assert (warm.hits, warm.misses) == (len(texts), 0)  # the model never ran


def test_a_cache_file_of_another_export_is_skipped_and_the_encoder_starts_cold(tiny_mpnet_dir, tiny_onnx_dir,
                                                                               tmp_path, caplog):
    from arttag.encoders.cache import cache_file
    from arttag.encoders.loader import load_encoder

    class Impostor(CountingEncoder):
        name = "tiny-mpnet/onnx-int8"  # same name, another model file
        fingerprint = "0000000000000000"

    folder = tmp_path / "cache"
    impostor = CachedEncoder(Impostor(32))
    impostor.encode(["a"])
    impostor.save(cache_file(folder, impostor.name))
    encoder = load_encoder(_onnx_settings(tiny_mpnet_dir, folder))
    assert len(encoder) == 0 and "embedding cache not used" in caplog.text
    assert encoder.encode(["a"]).shape == (1, encoder.dim)


def test_training_reads_a_cache_folder_the_worker_wrote(tmp_path):
    from arttag.encoders.cache import persist
    from arttag.model.training import embed_texts

    texts = [f"artwork {i}" for i in range(30)]
    worker_side = CachedEncoder(CountingEncoder())
    expected = worker_side.encode(texts)
    persist(worker_side, tmp_path)
    inner = CountingEncoder()
    np.testing.assert_array_equal(embed_texts(inner, texts, cache_dir=tmp_path), expected)
    assert inner.encoded == []


def test_the_worker_writes_its_cache_at_shutdown_only_when_a_folder_is_set(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from arttag.encoders.cache import cache_file
    from arttag.settings import StreamSettings
    from arttag_stream.runner import save_embeddings

    encoder = CachedEncoder(CountingEncoder())
    encoder.encode(["one", "two"])
    tagger = SimpleNamespace(encoder=encoder)
    save_embeddings(StreamSettings(), tagger)  # no folder: nothing written anywhere
    monkeypatch.setenv("ARTTAG_ENCODER__CACHE_DIR", str(tmp_path / "cache"))
    settings = StreamSettings()
    save_embeddings(settings, tagger)
    reader = CachedEncoder(CountingEncoder())
    assert reader.load(cache_file(settings.encoder.cache_dir, encoder.name)) == 2
