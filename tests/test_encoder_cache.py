"""The embedding cache: keyed by text hash, bounded LRU, saved and loaded as .npz."""

from __future__ import annotations

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
