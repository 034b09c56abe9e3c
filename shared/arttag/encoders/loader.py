"""The one factory the rest of arttag calls to get the configured sentence encoder."""

from __future__ import annotations

from typing import Literal

from arttag.encoders.base import TextEncoder
from arttag.settings import EncoderSettings

EncoderKind = Literal["onnx", "hashing"]
"""``onnx``: the exported sentence model (:func:`load_encoder`); ``hashing``: the fake for tests and dry runs."""


def open_encoder(kind: EncoderKind, settings: EncoderSettings | None = None, *,
                 dim: int | None = None) -> TextEncoder:
    """The encoder of ``kind``: the ONNX one from ``settings`` (default settings when None), or the
    hashing fake of ``dim`` dimensions (its default when None). The one place a kind becomes an encoder."""
    if kind == "hashing":
        from arttag.encoders.hashing import HashingEncoder

        return HashingEncoder(dim) if dim else HashingEncoder()
    return load_encoder(settings if settings is not None else EncoderSettings())


def load_encoder(settings: EncoderSettings) -> TextEncoder:
    """The exported ONNX encoder named by ``settings``, behind an embedding cache when ``cache_size`` > 0.

    Raises :class:`~arttag.errors.ModelError` when the model has not been
    fetched and exported yet (``arttag model fetch`` then ``arttag model export``).
    """
    # onnxruntime is imported here, not at package import, so importing arttag stays cheap.
    from arttag.encoders.cache import CachedEncoder
    from arttag.encoders.onnx import OnnxEncoder

    encoder = OnnxEncoder(
        settings.resolved_onnx_dir,
        settings.variant,
        intra_op_threads=settings.intra_op_threads,
        spin_wait=settings.spin_wait,
        execution_provider=settings.execution_provider,
        batch_size=settings.batch_size,
    )
    if settings.cache_size > 0:
        return CachedEncoder(encoder, max_size=settings.cache_size)
    return encoder
