"""The encoder protocol every scorer and service depends on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class TextEncoder(Protocol):
    """Turns texts into embeddings.

    ``encode`` returns a float32 array of shape ``(len(texts), dim)`` whose rows
    have unit L2 norm, so a dot product is a cosine similarity. The result for
    a text must not depend on the other texts in the call.

    Example::

        vectors = encoder.encode(["Town on Hill", "A Fishing Boat"])
        similarity = float(vectors[0] @ vectors[1])
    """

    @property
    def name(self) -> str:
        """Identifies the model and variant, e.g. ``all-mpnet-base-v2/onnx-int8``; part of model versions."""
        ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...
