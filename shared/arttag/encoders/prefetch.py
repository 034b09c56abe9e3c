"""Embeddings encoded ahead of the batch that needs them.

A stream worker knows its next batch while the tagger is still scoring the current one.
The encoder is most of a batch's time and its onnxruntime threads leave the event loop
and the scorers' Python idle cores, so encoding the next batch's texts in another thread
while this one is scored (:meth:`EmbeddingPrefetch.fill`) overlaps the two; the batch then
takes its vectors from here (:meth:`EmbeddingPrefetch.encode`) instead of encoding them.

The store is keyed by text, so a vector is the text's embedding whoever asks for it, and it
is bounded: what is never taken (the batch's event turned out to be unchanged, or the model
was swapped) is dropped oldest first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from arttag.encoders.base import TextEncoder


class EmbeddingPrefetch:
    """Vectors of texts encoded ahead, taken once by the batch that needs them.

    Example::

        prefetch = EmbeddingPrefetch(encoder)
        prefetch.fill(next_texts)                  # in another thread, while a batch is scored
        vectors = prefetch.encode(next_texts)      # later: no encoder call for those texts
    """

    def __init__(self, encoder: TextEncoder, max_size: int = 4096) -> None:
        self.encoder = encoder
        self.max_size = max_size
        self._held: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.taken = 0
        """Texts a batch took from here instead of encoding them."""

    def __len__(self) -> int:
        return len(self._held)

    def fill(self, texts: Sequence[str]) -> int:
        """Encode the texts not held yet (blocking, outside any lock); how many were encoded."""
        with self._lock:
            wanted = [t for t in dict.fromkeys(texts) if t not in self._held]
        if not wanted:
            return 0
        vectors = np.asarray(self.encoder.encode(wanted), dtype=np.float32)
        with self._lock:
            for text, vector in zip(wanted, vectors):
                self._held[text] = vector
            while len(self._held) > self.max_size:
                self._held.popitem(last=False)
        return len(wanted)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """The texts' embeddings: those held are taken (and forgotten), the rest encoded now,
        each distinct text once (a batch of sketchbook pages often repeats one title)."""
        distinct = list(dict.fromkeys(texts))
        with self._lock:
            held = {t: self._held.pop(t) for t in distinct if t in self._held}
            self.taken += sum(1 for t in texts if t in held)
        missing = [t for t in distinct if t not in held]
        if missing:
            held.update(zip(missing, np.asarray(self.encoder.encode(missing), dtype=np.float32)))
        return np.stack([held[t] for t in texts]) if texts else np.zeros((0, self.encoder.dim), np.float32)
