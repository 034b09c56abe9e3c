"""The training data's reference profile: what incoming artworks and suggestions are compared with.

Built from the training catalogue by :func:`build_reference_profile` (``arttag train`` and
``arttag audit --profile``), saved in the bundle folder as ``reference_profile.json``, read
by the stream worker's :class:`arttag.quality.monitoring.DataQualityMonitor`. The audit and the
monitor both depend on this module and not on each other.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from arttag.catalogue.records import CatalogueRecord
from arttag.catalogue.text import build_text
from arttag.errors import ModelError
from arttag.events import ArtworkMetadata, TagSuggestion
from arttag.quality.audit.coverage import METADATA_FIELDS, absent_fields

REFERENCE_PROFILE_FILE = "reference_profile.json"
TEXT_LENGTH_BUCKETS = (25, 50, 75, 100, 150, 200, 300, 500, 1000, 2000)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


@dataclass
class ReferenceProfile:
    """What the training data looked like, to compare live traffic with."""

    artworks: int
    field_absent: dict[str, float]
    """Per metadata field, the share of training artworks where it is missing or empty."""
    text_length_edges: list[float]
    """Inner edges of the text-length bins (deciles of the training texts)."""
    text_length_shares: list[float]
    """Share of training texts per bin; one more entry than ``text_length_edges``."""
    text_length_mean: float
    tags_per_artwork_mean: float
    top_confidence_mean: float | None = None
    source: str | None = None
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReferenceProfile:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def _metadata(items: Iterable[CatalogueRecord | ArtworkMetadata]) -> list[ArtworkMetadata]:
    return [i.metadata if isinstance(i, CatalogueRecord) else i for i in items]


def bin_shares(lengths: Sequence[float], edges: Sequence[float]) -> list[float]:
    counts = np.bincount(np.searchsorted(edges, lengths, side="right"), minlength=len(edges) + 1)
    total = counts.sum()
    return [float(c / total) if total else 0.0 for c in counts]


def build_reference_profile(
    records: Iterable[CatalogueRecord | ArtworkMetadata],
    suggestions: Sequence[Sequence[TagSuggestion]] | None = None,
    source: str | None = None,
) -> ReferenceProfile:
    """Profile of a training catalogue; pass the tagger's ``suggestions`` on held-out artworks to
    include the expected top confidence."""
    metas = _metadata(records)
    if not metas:
        raise ValueError("cannot profile an empty catalogue")
    absent = {name: 0 for name in METADATA_FIELDS}
    for meta in metas:
        for name in absent_fields(meta):
            absent[name] += 1
    lengths = np.array([len(build_text(m)) for m in metas], dtype=float)
    edges = sorted(set(float(q) for q in np.quantile(lengths, np.linspace(0.1, 0.9, 9))))
    top = [max(s.confidence for s in ranked) for ranked in suggestions or [] if ranked]
    return ReferenceProfile(
        artworks=len(metas),
        field_absent={k: round(v / len(metas), 6) for k, v in absent.items()},
        text_length_edges=edges,
        text_length_shares=bin_shares(lengths, edges),
        text_length_mean=float(lengths.mean()),
        tags_per_artwork_mean=sum(len(m.tags) for m in metas) / len(metas),
        top_confidence_mean=float(np.mean(top)) if top else None,
        source=source,
    )


def save_reference_profile(profile: ReferenceProfile, path: str | Path) -> Path:
    """Write the profile as JSON; ``path`` is a file, or a bundle folder (``reference_profile.json`` inside)."""
    path = Path(path)
    if path.is_dir():
        path = path / REFERENCE_PROFILE_FILE
    path.write_text(json.dumps(profile.to_dict(), indent=1), encoding="utf-8")
    return path


def load_reference_profile(path: str | Path) -> ReferenceProfile:
    """Read a profile from a JSON file or from a bundle folder's ``reference_profile.json``."""
    path = Path(path)
    if path.is_dir():
        path = path / REFERENCE_PROFILE_FILE
    try:
        return ReferenceProfile.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as exc:
        raise ModelError(f"cannot read reference profile {path}: {exc}", path=str(path)) from exc


