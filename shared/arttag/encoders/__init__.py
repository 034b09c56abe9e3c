"""Sentence encoders behind one protocol: texts in, L2-normalised float32 rows out."""

from arttag.encoders.base import TextEncoder
from arttag.encoders.hashing import HashingEncoder
from arttag.encoders.loader import load_encoder

__all__ = ["TextEncoder", "HashingEncoder", "load_encoder"]
