"""Sentence encoders behind one protocol: texts in, L2-normalised float32 rows out."""

from arttag.encoders.base import TextEncoder
from arttag.encoders.hashing import HashingEncoder

__all__ = ["TextEncoder", "HashingEncoder"]
