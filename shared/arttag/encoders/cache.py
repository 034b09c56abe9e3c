"""An embedding cache in front of any encoder, keyed by ``text_hash(text)``.

Catalogue events mostly repeat texts (updates that do not touch the text,
replays, backfills), so unchanged texts are never encoded twice. The cache
is a bounded LRU in memory and can be saved to / loaded from an ``.npz``
file, so a whole catalogue's embeddings carry over between processes; a folder of such
files, one per encoder (:func:`cache_file`), is what ``arttag train --embedding-cache`` and
``ARTTAG_ENCODER__CACHE_DIR`` name.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from arttag.catalogue.text import text_hash
from arttag.encoders.base import TextEncoder
from arttag.errors import ArttagError, ModelError

log = logging.getLogger(__name__)


class CachedEncoder:
    """Wraps a :class:`TextEncoder`; same ``name`` and ``dim``, same results, fewer encodes.

    Example::

        encoder = CachedEncoder(OnnxEncoder(onnx_dir), max_size=100_000)
        encoder.load("catalogue-embeddings.npz")   # optional warm start
        vectors = encoder.encode(texts)
        encoder.save("catalogue-embeddings.npz")
    """

    def __init__(self, inner: TextEncoder, max_size: int = 100_000) -> None:
        self.inner = inner
        self.max_size = max_size
        self._entries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def fingerprint(self) -> str:
        """The wrapped encoder's fingerprint (its model file hash) or, lacking one, its name."""
        return str(getattr(self.inner, "fingerprint", self.inner.name))

    def __len__(self) -> int:
        return len(self._entries)

    def _put(self, key: str, vector: np.ndarray) -> None:
        if self.max_size <= 0:
            return
        self._entries[key] = vector
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        keys = [text_hash(t) for t in texts]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        with self._lock:
            for row, key in enumerate(keys):
                vector = self._entries.get(key)
                if vector is None:
                    missing.setdefault(key, []).append(row)
                else:
                    self._entries.move_to_end(key)
                    out[row] = vector
            self.hits += len(texts) - sum(len(rows) for rows in missing.values())
            self.misses += len(missing)
        if missing:
            # Encode each distinct missing text once, outside the lock (encoding is the slow part).
            firsts = [rows[0] for rows in missing.values()]
            vectors = self.inner.encode([texts[i] for i in firsts])
            with self._lock:
                for (key, rows), vector in zip(missing.items(), vectors):
                    out[rows] = vector
                    self._put(key, vector.copy())
        return out

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def save(self, path: str | Path) -> Path:
        """Write the cached embeddings (keys, vectors, encoder name) to an ``.npz`` file."""
        path = Path(path)
        with self._lock:
            keys = np.array(list(self._entries), dtype="U64")
            vectors = (
                np.stack(list(self._entries.values())) if self._entries else np.zeros((0, self.dim), np.float32)
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, keys=keys, vectors=vectors, encoder=np.array(self.name), fingerprint=np.array(self.fingerprint))
        os.replace(tmp, path)
        log.info("saved %d cached embeddings of %s to %s", len(keys), self.name, path)
        return path

    def load(self, path: str | Path) -> int:
        """Add the embeddings of an ``.npz`` written by :meth:`save`; returns how many were added.

        A file from another encoder (different name, model file or dimension) is
        refused, since mixing embedding spaces silently would corrupt every similarity.
        """
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                name = str(data["encoder"])
                fingerprint = str(data["fingerprint"]) if "fingerprint" in data else self.fingerprint
                keys = data["keys"]
                vectors = data["vectors"].astype(np.float32, copy=False)
        except (OSError, KeyError, ValueError) as exc:
            raise ModelError(f"cannot read embedding cache {path}: {exc}", path=str(path)) from exc
        if name != self.name or fingerprint != self.fingerprint or (len(vectors) and vectors.shape[1] != self.dim):
            raise ModelError(
                f"embedding cache {path} was written by {name} ({fingerprint}), not {self.name} ({self.fingerprint})",
                path=str(path),
            )
        with self._lock:
            for key, vector in zip(keys.tolist(), vectors):
                self._put(key, vector)
        log.info("loaded %d cached embeddings from %s", len(keys), path)
        return len(keys)


def cache_file(folder: str | Path, encoder_name: str) -> Path:
    """The cache file of the encoder named ``encoder_name`` in ``folder``: ``<name>.npz``, the
    name made safe for a file system (``all-mpnet-base-v2/onnx-int8`` -> ``all-mpnet-base-v2_onnx-int8.npz``)."""
    return Path(folder) / (re.sub(r"[^A-Za-z0-9_.-]+", "_", encoder_name) + ".npz")


def model_sha256(encoder: object) -> str | None:
    """sha256 of the model file behind an ONNX encoder, through a cache (None for encoders without one).

    The encoder's name says which model and variant, not which export of it; a re-export
    (another quantisation recipe) changes every vector, so cache files record this too.
    """
    inner = getattr(encoder, "inner", encoder)
    manifest, variant = getattr(inner, "manifest", None), getattr(inner, "variant", None)
    if manifest is None or not variant:
        return None
    try:
        return str(manifest.variant(variant).sha256)
    except (ArttagError, AttributeError):
        return None


def write_cache_file(cached: CachedEncoder, path: str | Path, sha256: str | None) -> Path:
    """``cached.save(path)`` and the ``<file>.json`` beside it naming the encoder and its model
    file's sha256, which training checks before it trusts a cache file."""
    path = cached.save(path)
    path.with_name(path.name + ".json").write_text(
        json.dumps({"encoder": cached.name, "model_sha256": sha256}) + "\n")
    return path


def warm_start(encoder: object, folder: str | Path) -> int:
    """Load ``encoder``'s cache file from ``folder`` into it when there is one; returns how many
    embeddings were added. A file of another encoder or export, or an unreadable one, is logged
    and skipped: the encoder starts cold rather than not at all."""
    if not isinstance(encoder, CachedEncoder) or encoder.max_size <= 0:
        return 0
    path = cache_file(folder, encoder.name)
    if not path.exists():
        log.info("no embedding cache %s yet: starting cold", path)
        return 0
    try:
        return encoder.load(path)
    except ModelError as exc:
        log.warning("embedding cache not used, starting cold: %s", exc)
        return 0


def persist(encoder: object, folder: str | Path) -> Path | None:
    """Write what ``encoder``'s cache holds to its cache file in ``folder`` (None: no cache)."""
    if not isinstance(encoder, CachedEncoder) or encoder.max_size <= 0:
        return None
    return write_cache_file(encoder, cache_file(folder, encoder.name), model_sha256(encoder))
