"""Neighbours in the accession sequence: artworks numbered next to this one.

Museums number acquisitions in sequence, so neighbouring accession numbers
(Tate's ``D12345``, ``D12346``...) are usually consecutive pages of one
sketchbook or lots of one bequest, catalogued together and often showing the
same places and subjects. Every training artwork with the same prefix and a
number at most ``window`` away votes for its tags with weight
``1 / (1 + |number difference|)``, so a tag's score is the share of that
weight its voters carry and the explanation cites exactly those artworks
(their "similarity" is the weight). Artworks without a parseable accession
number, or with no numbered neighbour, get no candidates from this scorer.
"""

from __future__ import annotations

import bisect
import json
import re
from pathlib import Path

import numpy as np
from pydantic import Field

from arttag.scorers.base import Batch, Corpus
from arttag.scorers.knn import KnnParams, KnnVoting

# Letters, then digits, then an optional part suffix ("D12345", "T07799", "AR00123", "P77521a").
_ACCESSION = re.compile(r"^\s*([A-Za-z]+)\s*0*(\d+)\s*[A-Za-z]?\s*$")


def parse_accession(value: str | None) -> tuple[str, int] | None:
    """``("D", 12345)`` for ``"D12345"``; None for anything without a letter prefix and a number."""
    m = _ACCESSION.match(value or "")
    return (m.group(1).upper(), int(m.group(2))) if m else None


class AccessionParams(KnnParams):
    window: int = Field(10, ge=1, le=10_000, description="Largest number difference that still counts as a neighbour")
    neighbours: int = Field(20, ge=1, le=1000)
    power: float = Field(1.0, gt=0, le=20)


class AccessionScorer(KnnVoting):
    name = "accession"
    cited_artworks = "tagged artwork(s) with neighbouring accession numbers"
    relation = "nearby accession number"
    Params = AccessionParams
    params: AccessionParams

    def _fit(self, corpus: Corpus) -> None:
        self._set_training(corpus)
        numbers = corpus.accession_numbers or [None] * len(corpus)
        series: dict[str, list[tuple[int, int]]] = {}
        for i, value in enumerate(numbers):
            parsed = parse_accession(value)
            if parsed:
                series.setdefault(parsed[0], []).append((parsed[1], i))
        self._set_series({prefix: sorted(items) for prefix, items in series.items()})

    def _set_series(self, series: dict[str, list[tuple[int, int]]]) -> None:
        self.series = series
        self._numbers = {prefix: [n for n, _ in items] for prefix, items in series.items()}

    def _learn(self, corpus: Corpus) -> None:
        positions = self._add_training(corpus)
        numbers = corpus.accession_numbers or [None] * len(corpus)
        series_of = getattr(self, "_series_of", None)
        if series_of is None:
            series_of = self._series_of = {i: p for p, items in self.series.items() for _, i in items}
        touched: set[str] = set()
        for r, j in enumerate(positions.tolist()):
            if j < 0:
                continue
            old = series_of.pop(j, None)
            if old is not None:
                self.series[old] = [item for item in self.series[old] if item[1] != j]
                touched.add(old)
            parsed = parse_accession(numbers[r])
            if parsed and len(self.label_lists[j]):
                bisect.insort(self.series.setdefault(parsed[0], []), (parsed[1], j))
                series_of[j] = parsed[0]
                touched.add(parsed[0])
        for prefix in touched:
            self._numbers[prefix] = [n for n, _ in self.series[prefix]]

    def _neighbours(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        numbers = batch.accession_numbers or [None] * len(batch)
        w, k = self.params.window, self.params.neighbours
        rows: list[list[tuple[int, float]]] = []
        for value in numbers:
            parsed = parse_accession(value)
            found: list[tuple[int, float]] = []
            if parsed and parsed[0] in self.series:
                prefix, number = parsed
                keys = self._numbers[prefix]
                lo, hi = bisect.bisect_left(keys, number - w), bisect.bisect_right(keys, number + w)
                found = [(i, 1.0 / (1.0 + abs(n - number))) for n, i in self.series[prefix][lo:hi]]
                found.sort(key=lambda x: (-x[1], x[0]))
            rows.append(found[:k])
        return self._padded(rows)

    def _save(self, directory: Path) -> None:
        self._save_training(directory)
        (directory / "series.json").write_text(json.dumps(self.series))

    def _load(self, directory: Path) -> None:
        self._load_training(directory)
        raw = json.loads((directory / "series.json").read_text())
        self._set_series({p: [(int(n), int(i)) for n, i in items] for p, items in raw.items()})
