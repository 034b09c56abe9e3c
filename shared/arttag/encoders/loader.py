"""The one factory the rest of arttag calls to get the configured sentence encoder."""

from __future__ import annotations

import logging
from typing import Literal

from arttag.encoders.base import TextEncoder
from arttag.settings import EncoderSettings

log = logging.getLogger(__name__)

EncoderKind = Literal["onnx", "hashing"]
"""``onnx``: the exported sentence model (:func:`load_encoder`); ``hashing``: the fake for tests and dry runs."""

MEASURE_TEXTS = 32
"""Texts from the bundled sample that ``variant=measure`` times both exports on."""


def open_encoder(kind: EncoderKind, settings: EncoderSettings | None = None, *,
                 dim: int | None = None, bundle_variant: str | None = None) -> TextEncoder:
    """The encoder of ``kind``: the ONNX one from ``settings`` (default settings when None), or the
    hashing fake of ``dim`` dimensions (its default when None). The one place a kind becomes an encoder.
    ``bundle_variant``: see :func:`load_encoder`."""
    if kind == "hashing":
        from arttag.encoders.hashing import HashingEncoder

        return HashingEncoder(dim) if dim else HashingEncoder()
    return load_encoder(settings if settings is not None else EncoderSettings(), bundle_variant=bundle_variant)


def encoder_choice(encoder: object):
    """The :class:`~arttag.encoders.choice.EncoderChoice` an encoder was opened with (through a
    cache), or None (the hashing fake, an encoder built by hand)."""
    return getattr(getattr(encoder, "inner", encoder), "choice", None)


def load_encoder(settings: EncoderSettings, *, bundle_variant: str | None = None) -> TextEncoder:
    """The exported ONNX encoder named by ``settings``, behind an embedding cache when ``cache_size`` > 0.

    The variant: ``settings.variant`` when it is ``fp32`` or ``int8``; else ``bundle_variant``
    when given (a bundle's embeddings fit only the variant that made them); else the ``auto``
    rule of :func:`~arttag.encoders.choice.choose_variant` on this CPU's flags, or for
    ``measure`` the faster of the two timed here. The choice is logged and kept as the
    encoder's ``choice`` (see :func:`encoder_choice`).

    Raises :class:`~arttag.errors.ModelError` when the model has not been
    fetched and exported yet (``arttag model fetch`` then ``arttag model export``).
    """
    # onnxruntime is imported here, not at package import, so importing arttag stays cheap.
    from arttag.encoders.cache import CachedEncoder, warm_start
    from arttag.encoders.choice import EncoderChoice, choose_variant, measure_fastest
    from arttag.encoders.onnx import OnnxEncoder, select_providers
    from arttag.machine import cpu_flags

    provider = "cuda" if select_providers(settings.execution_provider)[0].startswith("CUDA") else "cpu"

    def open_variant(variant: str) -> OnnxEncoder:
        return OnnxEncoder(
            settings.resolved_onnx_dir,
            variant,
            intra_op_threads=settings.intra_op_threads,
            spin_wait=settings.spin_wait,
            execution_provider=settings.execution_provider,
            batch_size=settings.batch_size,
        )

    if settings.variant in ("fp32", "int8"):
        choice = EncoderChoice(settings.variant, provider, "configured", "ARTTAG_ENCODER__VARIANT")
        encoder = open_variant(choice.variant)
    elif bundle_variant is not None:
        preferred = choose_variant(cpu_flags(), provider)
        choice = EncoderChoice(
            bundle_variant, provider, "bundle",
            f"the bundle's embeddings were made with {bundle_variant}; on its own this machine would "
            f"run {preferred.variant} ({preferred.reason})",
        )
        if preferred.variant != bundle_variant:
            log.warning("encoder: %s; a bundle trained here with ARTTAG_ENCODER__VARIANT=%s would run faster "
                        "or closer to fp32", choice.detail, preferred.variant)
        encoder = open_variant(bundle_variant)
    elif settings.variant == "measure":
        from arttag.encoders.export import calibration_texts

        encoder, choice, _ = measure_fastest(open_variant, calibration_texts(MEASURE_TEXTS), provider)
    else:
        choice = choose_variant(cpu_flags(), provider)
        encoder = open_variant(choice.variant)
    encoder.choice = choice
    log.info("encoder variant %s on %s (%s): %s", choice.variant, choice.provider, choice.reason, choice.detail)
    if settings.cache_size > 0:
        cached = CachedEncoder(encoder, max_size=settings.cache_size)
        if settings.cache_dir is not None:
            warm_start(cached, settings.cache_dir)
        return cached
    return encoder
