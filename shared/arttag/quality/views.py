"""Evaluation views: which held-out artworks a figure is measured on, and against which training artworks.

A random split flatters neighbour methods: almost every held-out artwork has catalogued
siblings in training (pages of the same sketchbook, the next accession number). The views
measure where that help is missing:

* ``random``: the dev split of :func:`arttag.catalogue.split.split_of` (every artwork trained on
  that is not in it is "training");
* ``new_acquisitions``: train on the artworks acquired before ``year`` (2000), evaluate on those
  acquired from ``year`` on; artworks without an acquisition year are in neither;
* ``isolated`` (within either): held-out artworks that share no group title with any training
  artwork and have no training artwork by the same first artist within ``window`` (10) numbers
  in the same accession series; ``isolated_new_artist``: those of them whose first artist has no
  work in training at all.

Every function here is pure: records in, flags or record lists out.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from arttag.catalogue.records import CatalogueRecord
from arttag.events import ArtworkMetadata
from arttag.scorers.accession import parse_accession

NEW_ACQUISITIONS_FROM = 2000
"""First acquisition year of the new-acquisitions view's held-out artworks."""
ACCESSION_WINDOW = 10
"""Largest accession-number difference that still makes a training artwork a sibling."""
SUBVIEWS = ("isolated", "isolated_new_artist")


def _norm(value: str | None) -> str:
    return re.sub(r"\s+", " ", value or "").strip().lower()


def first_artist(meta: ArtworkMetadata) -> str | None:
    """The first credited artist, normalised (case and spacing); None when there is none."""
    return _norm(meta.artists[0]) or None if meta.artists else None


def split_by_acquisition(records: Iterable[CatalogueRecord], year: int = NEW_ACQUISITIONS_FROM,
                         ) -> tuple[list[CatalogueRecord], list[CatalogueRecord]]:
    """(acquired before ``year``, acquired from ``year`` on); artworks without a year are in neither."""
    before: list[CatalogueRecord] = []
    after: list[CatalogueRecord] = []
    for r in records:
        y = r.metadata.acquisition_year
        if y is None:
            continue
        (before if y < year else after).append(r)
    return before, after


@dataclass
class TrainingIndex:
    """What the isolation test asks of the training artworks: their group titles, their
    artists, and each (first artist, accession series)'s numbers, sorted."""

    groups: set[str] = field(default_factory=set)
    artists: set[str] = field(default_factory=set)
    numbers: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    window: int = ACCESSION_WINDOW

    @classmethod
    def build(cls, training: Iterable[ArtworkMetadata], window: int = ACCESSION_WINDOW) -> TrainingIndex:
        index = cls(window=window)
        for meta in training:
            if _norm(meta.group_title):
                index.groups.add(_norm(meta.group_title))
            # Any credited artist counts as "has work in training", not only the first one.
            index.artists.update(a for a in (_norm(x) for x in meta.artists) if a)
            artist, acc = first_artist(meta), parse_accession(meta.accession_number)
            if artist and acc:
                index.numbers.setdefault((artist, acc[0]), []).append(acc[1])
        for numbers in index.numbers.values():
            numbers.sort()
        return index

    def has_sibling(self, meta: ArtworkMetadata) -> bool:
        """A training artwork of the same group title, or by the same first artist within the window
        of the same accession series."""
        if _norm(meta.group_title) and _norm(meta.group_title) in self.groups:
            return True
        artist, acc = first_artist(meta), parse_accession(meta.accession_number)
        if not (artist and acc):
            return False
        numbers = self.numbers.get((artist, acc[0]), [])
        lo = bisect.bisect_left(numbers, acc[1] - self.window)
        return lo < len(numbers) and numbers[lo] <= acc[1] + self.window

    def artist_known(self, meta: ArtworkMetadata) -> bool:
        artist = first_artist(meta)
        return artist is not None and artist in self.artists


def view_masks(held_out: Sequence[ArtworkMetadata], training: Iterable[ArtworkMetadata],
               window: int = ACCESSION_WINDOW) -> dict[str, list[bool]]:
    """Per held-out artwork, whether it belongs to each sub-view (:data:`SUBVIEWS`)."""
    index = TrainingIndex.build(training, window)
    isolated = [not index.has_sibling(m) for m in held_out]
    return {
        "isolated": isolated,
        # An artwork with no credited artist is not "by a new artist": there is nothing to compare.
        "isolated_new_artist": [iso and first_artist(m) is not None and not index.artist_known(m)
                                for iso, m in zip(isolated, held_out)],
    }
