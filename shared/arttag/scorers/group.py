"""The artwork's group (e.g. the sketchbook a drawing belongs to) as neighbours.

Tate's sketchbook pages share their tags far more than their titles suggest.
Every training artwork with the same ``group_title`` (case and spaces
normalised) votes for its tags with weight 1, so a tag's score is the share of
the group's artworks that carry it; the explanation cites those artworks.
Artworks without a known group get no candidates from this scorer.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from pydantic import Field

from arttag.scorers.base import Batch, Corpus
from arttag.scorers.knn import KnnParams, KnnVoting


def _norm(value: str) -> str:
    return re.sub(r"\s+", " ", value).strip().lower()


class GroupParams(KnnParams):
    neighbours: int = Field(500, ge=1, le=100_000, description="At most this many group members vote")
    power: float = Field(1.0, gt=0, le=20)


class GroupScorer(KnnVoting):
    name = "group"
    cited_artworks = "tagged artwork(s) of the same group"
    relation = "same group"
    Params = GroupParams
    params: GroupParams
    field = "group_title"

    def _fit(self, corpus: Corpus) -> None:
        self._set_training(corpus)
        members: dict[str, list[int]] = {}
        for i, fields in enumerate(corpus.fields):
            g = _norm(fields.get(self.field, ""))
            if g:
                members.setdefault(g, []).append(i)
        self.members = {g: np.array(v[: self.params.neighbours], dtype=np.int64) for g, v in members.items()}

    def _learn(self, corpus: Corpus) -> None:
        positions = self._add_training(corpus)
        group_of = getattr(self, "_group_of", None)
        if group_of is None:
            group_of = self._group_of = {int(j): g for g, v in self.members.items() for j in v}
        for r, j in enumerate(positions.tolist()):
            if j < 0:
                continue
            old = group_of.pop(j, None)
            if old is not None and old in self.members:
                left = self.members[old][self.members[old] != j]
                if len(left):
                    self.members[old] = left
                else:
                    del self.members[old]
            g = _norm(corpus.fields[r].get(self.field, ""))
            if g and len(self.label_lists[j]):
                # learned members first: at the cap, a trained member gives way to a curated one
                held = self.members.get(g, np.zeros(0, dtype=np.int64))
                self.members[g] = np.concatenate([[j], held]).astype(np.int64)[: self.params.neighbours]
                group_of[j] = g

    def _neighbours(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        # Padded as :meth:`KnnVoting._padded` pads, from the member arrays themselves: a group
        # has up to ``neighbours`` (500) members, too many for a tuple each.
        found = [self.members.get(_norm(f.get(self.field, ""))) for f in batch.fields]
        width = max([1, *(len(m) for m in found if m is not None)])
        idx = np.zeros((len(found), width), dtype=np.int64)
        sims = np.zeros((len(found), width), dtype=np.float32)
        for r, members in enumerate(found):
            if members is not None and len(members):
                idx[r, : len(members)] = members
                sims[r, : len(members)] = 1.0
        return idx, sims

    def _save(self, directory: Path) -> None:
        self._save_training(directory)
        with open(directory / "groups.json", "w", encoding="utf-8") as fh:
            json.dump({g: v.tolist() for g, v in self.members.items()}, fh, ensure_ascii=False)

    def _load(self, directory: Path) -> None:
        self._load_training(directory)
        with open(directory / "groups.json", encoding="utf-8") as fh:
            self.members = {g: np.array(v, dtype=np.int64) for g, v in json.load(fh).items()}


class ArtistScorer(GroupScorer):
    """The same voting among training artworks with the same byline (artists and date),
    e.g. the drawings of one artist's tour of one year."""

    name = "artist"
    cited_artworks = "tagged artwork(s) with the same byline"
    relation = "same artist"
    field = "artists"
