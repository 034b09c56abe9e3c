"""Reading catalogue exports (JSON lines, optionally gzipped) in Tate's format.

Bad rows (not JSON, missing title, wrong types, unknown fields) are reported
with their line number and skipped; they never stop a training run or a backfill.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from arttag.errors import CatalogueError
from arttag.events import ArtworkMetadata, AssignedTag, describe_validation_error

log = logging.getLogger(__name__)


class _Subject(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int | str
    name: str
    parent: str | None = None


class TateRow(BaseModel):
    """One line of a Tate-format catalogue export; unknown fields are an error."""

    model_config = ConfigDict(extra="forbid")

    id: int | str
    acno: str | None = None
    title: str = Field(min_length=1)
    artists: list[str] = Field(default_factory=list)
    date: str | None = None
    year: int | None = None
    medium: str | None = None
    classification: str | None = None
    dimensions: str | None = None
    group_title: str | None = None
    inscription: str | None = None
    foreign_title: str | None = None
    description: str | None = None
    credit_line: str | None = None
    acquisition_year: int | None = None
    movements: list[str] = Field(default_factory=list)
    subjects_level0: list[_Subject] = Field(default_factory=list)
    subjects_level1: list[_Subject] = Field(default_factory=list)
    tags: list[_Subject] = Field(default_factory=list)

    @field_validator("year", "acquisition_year", mode="before")
    @classmethod
    def _unknown_year_is_none(cls, value: Any) -> Any:
        # Tate writes "no date" where a year is unknown; that is missing, not malformed.
        if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
            return None
        return value


@dataclass(frozen=True)
class CatalogueRecord:
    line: int
    artwork_id: str
    metadata: ArtworkMetadata
    group_areas: dict[str, str] = field(default_factory=dict)
    """Level-1 group -> level-0 area, as this row states them."""


@dataclass(frozen=True)
class BadRow:
    line: int
    error: str


@dataclass
class CatalogueReport:
    rows_read: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)


def row_to_record(line: int, row: TateRow) -> CatalogueRecord:
    meta = ArtworkMetadata(
        title=row.title,
        artists=row.artists,
        date=row.date,
        year=row.year,
        medium=row.medium,
        classification=row.classification,
        dimensions=row.dimensions,
        group_title=row.group_title,
        inscription=row.inscription,
        movements=row.movements,
        description=row.description,
        acquisition_year=row.acquisition_year,
        accession_number=row.acno,
        tags=[AssignedTag(id=str(t.id), label=t.name, group=t.parent) for t in row.tags],
    )
    areas = {s.name: s.parent for s in row.subjects_level1 if s.parent}
    return CatalogueRecord(line=line, artwork_id=str(row.id), metadata=meta, group_areas=areas)


def _open_text(path: Path) -> io.TextIOBase:
    if not path.exists():
        raise CatalogueError(f"catalogue file not found: {path}", path=str(path))
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def parse_row(line_no: int, text: str) -> CatalogueRecord:
    """Parse one catalogue line; raises ValueError with a readable reason."""
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    try:
        return row_to_record(line_no, TateRow.model_validate(data))
    except ValidationError as exc:
        raise ValueError(describe_validation_error(exc)) from exc


def iter_catalogue(path: str | Path, report: CatalogueReport | None = None) -> Iterator[CatalogueRecord]:
    """Yield the good rows of a catalogue file; bad ones are logged and added to ``report``."""
    report = report if report is not None else CatalogueReport()
    with _open_text(Path(path)) as fh:
        for line_no, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            report.rows_read += 1
            try:
                yield parse_row(line_no, text)
            except ValueError as exc:
                report.bad_rows.append(BadRow(line_no, str(exc)))
                log.warning("%s line %d skipped: %s", path, line_no, exc)


def load_catalogue(path: str | Path) -> tuple[list[CatalogueRecord], CatalogueReport]:
    report = CatalogueReport()
    records = list(iter_catalogue(path, report))
    return records, report
