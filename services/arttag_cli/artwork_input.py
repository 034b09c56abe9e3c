"""Reading artworks for ``arttag suggest``: one JSON object, a JSON list, JSON lines or a catalogue export.

Each item is an :class:`~arttag.events.ArtworkMetadata` object, an artwork event (its
``artwork`` is used), or a Tate-format catalogue row (recognised by its Tate-only fields,
read with :mod:`arttag.catalogue.records`). Files may be gzipped. An item that is not an
artwork becomes an :class:`InputItem` with an ``error``; the others are still read. Unknown
fields are dropped with a warning naming the closest known field, as a typo is the usual cause.
"""

from __future__ import annotations

import difflib
import gzip
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arttag.catalogue.records import TateRow, row_to_record
from arttag.errors import ArttagError
from arttag.events import ArtworkMetadata, describe_validation_error
from pydantic import ValidationError

_ID_FIELDS = ("artwork_id", "id")
_ARTWORK_FIELDS = frozenset(ArtworkMetadata.model_fields) | frozenset(_ID_FIELDS)
_TATE_FIELDS = frozenset(TateRow.model_fields)
# Fields only a catalogue row has: their presence says the item is one.
_TATE_ONLY = frozenset({"acno", "subjects_level0", "subjects_level1", "foreign_title", "credit_line"})
_EVENT_FIELDS = frozenset({"schema_version", "event_type", "event_id", "occurred_at", "source",
                           "artwork_id", "revision", "artwork"})


@dataclass
class InputItem:
    """One artwork read, or why it could not be."""

    where: str
    """Position in the input: ``line 3`` (JSON lines) or ``item 3`` (a JSON list), 1-based."""
    artwork_id: str | None = None
    metadata: ArtworkMetadata | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"artwork {self.artwork_id} ({self.where})" if self.artwork_id else self.where


def closest_field(name: str, known: frozenset[str]) -> str | None:
    match = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return match[0] if match else None


def _unknown_fields(data: dict[str, Any], known: frozenset[str]) -> tuple[dict[str, Any], list[str]]:
    warnings = []
    for key in sorted(set(data) - known):
        guess = closest_field(key, known)
        hint = f"; did you mean {guess!r}?" if guess else f"; known fields: {', '.join(sorted(known))}"
        warnings.append(f"unknown field {key!r} ignored{hint}")
    return {k: v for k, v in data.items() if k in known}, warnings


def parse_item(where: str, data: Any) -> InputItem:
    """One decoded JSON value to an :class:`InputItem` (never raises for bad input)."""
    item = InputItem(where)
    if not isinstance(data, dict):
        item.error = f"not a JSON object but {type(data).__name__}"
        return item
    if isinstance(data.get("artwork"), dict):  # an ArtworkCreated/Updated event
        item.artwork_id = str(data["artwork_id"]) if data.get("artwork_id") is not None else None
        _, item.warnings = _unknown_fields(data, _EVENT_FIELDS)
        data = data["artwork"]
    if not isinstance(data.get("artwork_id", ""), (str, int)) or not isinstance(data.get("id", ""), (str, int)):
        item.error = "the artwork id must be a string or an integer"
        return item
    is_tate = bool(_TATE_ONLY & set(data)) or any(isinstance(t, dict) and "name" in t for t in data.get("tags") or [])
    try:
        if is_tate:
            known, warnings = _unknown_fields(data, _TATE_FIELDS)
            item.warnings += warnings
            record = row_to_record(0, TateRow.model_validate(known))
            item.artwork_id, item.metadata = record.artwork_id, record.metadata
        else:
            known, warnings = _unknown_fields(data, _ARTWORK_FIELDS)
            item.warnings += warnings
            for key in _ID_FIELDS:
                if known.get(key) is not None and item.artwork_id is None:
                    item.artwork_id = str(known[key])
            item.metadata = ArtworkMetadata.model_validate({k: v for k, v in known.items() if k not in _ID_FIELDS})
    except ValidationError as exc:
        item.error = f"not an artwork: {describe_validation_error(exc)}"
    return item


def _read_text(source: str) -> str:
    if source == "-":
        stream = getattr(sys.stdin, "buffer", None)  # a text-only stdin (a test's StringIO) has none
        raw = stream.read() if stream is not None else sys.stdin.read().encode("utf-8")
    else:
        path = Path(source)
        if not path.is_file():
            raise ArttagError(f"input file not found: {source}")
        raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ArttagError(f"{'stdin' if source == '-' else source} is not UTF-8 text: {exc}") from exc


def read_artworks(source: str) -> Iterator[InputItem]:
    """Artworks from a file (or ``-`` for stdin): one JSON value (object or list) or JSON lines."""
    text = _read_text(source)
    if not text.strip():
        raise ArttagError(f"{'stdin' if source == '-' else source} is empty: expected artworks as JSON")
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
        lines = True
    else:
        lines = False
    if not lines:
        if isinstance(whole, list):
            for i, data in enumerate(whole, start=1):
                yield parse_item(f"item {i}", data)
        else:
            yield parse_item("input", whole)
        return
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            yield InputItem(f"line {line_no}", error=f"not JSON: {exc}")
            continue
        yield parse_item(f"line {line_no}", data)
