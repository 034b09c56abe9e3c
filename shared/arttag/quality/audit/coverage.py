"""Coverage: untagged artworks, tags per artwork, and how often each metadata field is missing or empty."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from arttag.catalogue.records import CatalogueRecord
from arttag.events import ArtworkMetadata

METADATA_FIELDS: tuple[str, ...] = (
    "title", "artists", "date", "year", "medium", "classification", "dimensions",
    "group_title", "inscription", "movements", "description", "acquisition_year", "tags",
)


def field_state(meta: ArtworkMetadata, name: str) -> str:
    """``missing`` (null or absent), ``empty`` (blank text or empty list) or ``present``."""
    value = getattr(meta, name)
    if value is None:
        return "missing"
    if isinstance(value, str):
        return "present" if value.strip() else "empty"
    if isinstance(value, list):
        # A list absent from the row and an empty list read the same: both count as empty.
        return "present" if value else "empty"
    return "present"


def absent_fields(meta: ArtworkMetadata) -> list[str]:
    """The fields of ``meta`` that are missing or empty."""
    return [name for name in METADATA_FIELDS if field_state(meta, name) != "present"]


def coverage(records: Sequence[CatalogueRecord], examples: int = 20) -> dict[str, Any]:
    n = len(records)
    untagged = [r for r in records if not r.metadata.tags]
    per_artwork = Counter(len(r.metadata.tags) for r in records)
    counts = sorted(len(r.metadata.tags) for r in records)
    states = {name: Counter() for name in METADATA_FIELDS}
    for r in records:
        for name in METADATA_FIELDS:
            states[name][field_state(r.metadata, name)] += 1
    fields = {}
    for name in METADATA_FIELDS:
        missing, empty = states[name]["missing"], states[name]["empty"]
        fields[name] = {
            "missing": missing,
            "empty": empty,
            "absent_share": round((missing + empty) / n, 4) if n else 0.0,
        }
    return {
        "artworks": n,
        "untagged": len(untagged),
        "untagged_share": round(len(untagged) / n, 4) if n else 0.0,
        "untagged_examples": [
            {"artwork_id": r.artwork_id, "title": r.metadata.title} for r in untagged[:examples]
        ],
        "tags_per_artwork": {
            "histogram": {str(k): per_artwork[k] for k in sorted(per_artwork)},
            "mean": round(sum(counts) / n, 3) if n else 0.0,
            "median": counts[n // 2] if n else 0,
            "max": counts[-1] if n else 0,
        },
        "fields": fields,
    }
