"""Reading artworks for ``arttag suggest``: one JSON object, a JSON list, JSON lines or a catalogue export,
from a file, from every such file of a folder, or from stdin.

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
    """Position in the input: ``line 3`` (JSON lines), ``item 3`` (a JSON list), 1-based, or
    ``input`` (one object); in a folder prefixed by the file's name (``a.jsonl: line 3``, ``b.json``)."""
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


INPUT_SUFFIXES = (".json", ".jsonl", ".ndjson")
"""The files of a folder that are read, each also gzipped (``.jsonl.gz``)."""


def _decode(raw: bytes, name: str) -> str:
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:  # a damaged or cut-off gzip file
            raise ArttagError(f"{name} is not a readable gzip file: {exc}") from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ArttagError(f"{name} is not UTF-8 text: {exc}") from exc


def _read_text(source: str) -> str:
    if source == "-":
        stream = getattr(sys.stdin, "buffer", None)  # a text-only stdin (a test's StringIO) has none
        raw = stream.read() if stream is not None else sys.stdin.read().encode("utf-8")
        return _decode(raw, "stdin")
    path = Path(source)
    if not path.is_file():
        raise ArttagError(f"input file not found: {source}")
    return _decode(path.read_bytes(), source)


def folder_files(folder: Path) -> list[Path]:
    """The files of ``folder`` that :func:`read_artworks` reads, by name (not its subfolders)."""
    def readable(p: Path) -> bool:
        name = p.name.lower().removesuffix(".gz")
        return p.is_file() and name.endswith(INPUT_SUFFIXES)

    return sorted((p for p in folder.iterdir() if readable(p)), key=lambda p: p.name)


def _items(text: str, file: str | None = None) -> Iterator[InputItem]:
    """The artworks of one decoded text: one JSON value (object or list) or JSON lines;
    ``file``, in a folder, names the file in each item's position."""
    def where(position: str) -> str:
        return f"{file}: {position}" if file else position

    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        pass
    else:
        if isinstance(whole, list):
            for i, data in enumerate(whole, start=1):
                yield parse_item(where(f"item {i}"), data)
        else:
            yield parse_item(file or "input", whole)
        return
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            yield InputItem(where(f"line {line_no}"), error=f"not JSON: {exc}")
            continue
        yield parse_item(where(f"line {line_no}"), data)


def _folder(folder: Path) -> Iterator[InputItem]:
    files = folder_files(folder)
    if not files:
        raise ArttagError(f"{folder} is a folder with no artwork files "
                          f"({', '.join(INPUT_SUFFIXES)}, gzipped or not)")
    for path in files:
        # a bad file is one bad item: the other files are still read
        try:
            text = _decode(path.read_bytes(), path.name)
        except (ArttagError, OSError) as exc:
            yield InputItem(path.name, error=str(exc))
            continue
        if not text.strip():
            yield InputItem(path.name, error="empty file")
            continue
        yield from _items(text, path.name)


def read_artworks(source: str) -> Iterator[InputItem]:
    """Artworks from a file, every artwork file of a folder (:func:`folder_files`, by name), or
    ``-`` for stdin: one JSON value (object or list) or JSON lines each."""
    if source != "-" and Path(source).is_dir():
        yield from _folder(Path(source))
        return
    text = _read_text(source)
    if not text.strip():
        raise ArttagError(f"{'stdin' if source == '-' else source} is empty: expected artworks as JSON")
    yield from _items(text)
