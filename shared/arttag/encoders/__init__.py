"""Sentence encoders behind one protocol: texts in, L2-normalised float32 rows out."""

from arttag.encoders.base import TextEncoder
from arttag.encoders.hashing import HashingEncoder
from arttag.encoders.loader import EncoderKind, load_encoder, open_encoder

__all__ = ["EncoderKind", "TextEncoder", "HashingEncoder", "load_encoder", "open_encoder"]
