"""The re-ranker's recent acquisitions: a second lesson on how far to trust the scorers for new arrivals.

The ``rerank`` split is random, so almost every rerank artwork has catalogued siblings among
the scorers' training artworks (pages of one sketchbook, the rest of a series), and the
re-ranker learns to trust neighbours and tag priors as far as they hold for such artworks. The
stream's real work is new acquisitions, which often arrive as whole series nobody has
catalogued yet, with tags older cataloguing hardly used. So the re-ranker also learns from the
most recently acquired ``share`` of the train and rerank artworks, scored by scorers fitted on
the train artworks acquired before them: the same question the stream answers, asked of the
catalogue's own past (:func:`arttag.model.training.train_ensemble`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from arttag.catalogue.records import CatalogueRecord

MIN_RECENT = 200
"""Fewer recent artworks than this (or fewer earlier ones) teach the re-ranker noise: the lesson is
skipped (a catalogue of a few hundred artworks)."""


@dataclass(frozen=True)
class RecentSplit:
    """``recent``: the artworks acquired from ``from_year`` on; ``earlier``: the train artworks
    the scorers for them are fitted on (acquired before, or with no acquisition year)."""

    from_year: int
    earlier: list[CatalogueRecord]
    recent: list[CatalogueRecord]


def recent_from_year(years: Sequence[int], share: float) -> int | None:
    """The latest acquisition year from which at least ``share`` of ``years`` were acquired
    (a year is never split); None when there are no years or ``share`` is 0."""
    if share <= 0 or not years:
        return None
    wanted = share * len(years)
    per_year = Counter(years)
    counted = 0
    for year in sorted(per_year, reverse=True):
        counted += per_year[year]
        if counted >= wanted:
            return year
    return min(per_year)


def recent_split(train: Sequence[CatalogueRecord], rerank: Sequence[CatalogueRecord],
                 share: float, min_artworks: int = MIN_RECENT) -> RecentSplit | None:
    """The recent artworks among ``train`` and ``rerank`` (the latest ``share`` of those with an
    acquisition year) and the ``train`` artworks acquired before them; None when the catalogue
    has no acquisition years or either side would hold fewer than ``min_artworks``."""
    pool = [*train, *rerank]
    years = [r.metadata.acquisition_year for r in pool if r.metadata.acquisition_year is not None]
    from_year = recent_from_year(years, share)
    if from_year is None:
        return None
    recent = [r for r in pool if (r.metadata.acquisition_year or from_year - 1) >= from_year]
    earlier = [r for r in train if (r.metadata.acquisition_year or from_year - 1) < from_year]
    if len(recent) < min_artworks or len(earlier) < min_artworks:
        return None
    return RecentSplit(from_year, earlier, recent)
