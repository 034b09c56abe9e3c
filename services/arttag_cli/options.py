"""Option types that name the option in their error (``--limit must be ≥ 1``).

argparse prefixes a type's error with ``argument --limit:``; the message itself repeats the
option so it reads on its own too. Every numeric option of every command uses one of these
(tests/test_cli_options.py walks the parser for any that does not); each parser carries the
option it checks as ``checks_option``, so that test also catches a checker naming another option.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def int_range(option: str, low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option} must be a whole number, not {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{option} must be ≥ {low} (got {value})")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{option} must be ≤ {high} (got {value})")
        return value

    parse.__name__ = "integer"
    parse.checks_option = option  # type: ignore[attr-defined]
    return parse


def positive(option: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option} must be a number, not {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{option} must be > 0 (got {text})")
        return value

    parse.__name__ = "number"
    parse.checks_option = option  # type: ignore[attr-defined]
    return parse


def default_embedding_cache() -> Path:
    """The one default of every command's ``--embedding-cache``: ``<user cache>/arttag/embeddings``."""
    from arttag.settings import default_cache_dir

    return default_cache_dir() / "embeddings"


def fraction(option: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option} must be a number from 0 to 1, not {text!r}") from None
        if not 0.0 <= value <= 1.0:
            raise argparse.ArgumentTypeError(f"{option} must be from 0 to 1 (got {text})")
        return value

    parse.__name__ = "number"
    parse.checks_option = option  # type: ignore[attr-defined]
    return parse
