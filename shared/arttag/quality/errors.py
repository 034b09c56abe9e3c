"""What the ensemble's errors are, per evaluation view: where each true tag was lost and which
wrong suggestions took the top five.

Every true (artwork, tag) pair of the held-out artworks ends in one of four places:

* ``outside_vocabulary``: the bundle's vocabulary lacks the tag, so nothing can suggest it (a
  thesaurus given at training, ``arttag train --vocabulary``, is the cure);
* ``not_a_candidate``: in the vocabulary, but no scorer proposed it;
* ``ranked_below_5``: proposed, but the re-ranker put five other tags above it;
* ``in_top_5``: found.

Wrong top-five suggestions are counted per tag area, and two kinds are singled out because
the artwork's own fields rule them out:

* ``place_contradictions``: a place the text does not name, suggested for an artwork whose text
  names another place of the vocabulary, when no training artwork carries both and it is not a
  part of the named place (``Ovington near Brighton`` given ``Scotland``);
* ``series``: the share of true tags held by the ten artists with the most held-out artworks
  (new acquisitions arrive as whole series, so a few series weigh on every figure).

Pure functions: records, rankings and the vocabulary in; plain dictionaries out.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from arttag.catalogue.records import CatalogueRecord
from arttag.catalogue.text import build_text
from arttag.catalogue.vocabulary import Vocabulary

PLACE_AREA = "places"
TOP = 5
OUTSIDE = "(outside the vocabulary)"
NO_AREA = "(no area)"
FATES = ("in_top_5", "ranked_below_5", "not_a_candidate", "outside_vocabulary")
MIN_PLACE_LABEL = 4
"""Shorter place labels ("Ely", "Rye") match too many ordinary words to count as named."""


@dataclass
class RankedArtwork:
    """One held-out artwork as the ensemble saw it: its ranked candidates (vocabulary indices,
    best first; every candidate, not only the top ten) and its true tags (ids)."""

    record: CatalogueRecord
    ranked: Sequence[int]

    @property
    def gold_ids(self) -> set[str]:
        return {t.id for t in self.record.metadata.tags}


class PlaceIndex:
    """The vocabulary's place tags, found by label in a text, and which of them training artworks
    carry together."""

    def __init__(self, vocabulary: Vocabulary, training: Sequence[CatalogueRecord]) -> None:
        self.places = {i for i, t in enumerate(vocabulary) if t.area == PLACE_AREA}
        self._labels = {i: vocabulary_label(vocabulary, i).lower() for i in self.places}
        labels: dict[str, int] = {}
        for i, label in self._labels.items():
            if len(label) >= MIN_PLACE_LABEL:
                labels.setdefault(label, i)
        # Longest labels first, so "New York" wins over "York" where both would match.
        ordered = sorted(labels, key=len, reverse=True)
        self._pattern = re.compile(r"\b(" + "|".join(re.escape(x) for x in ordered) + r")\b",
                                   re.IGNORECASE) if ordered else None
        self._by_label = labels
        self.together: set[tuple[int, int]] = set()
        for r in training:
            here = [vocabulary.index(t.id) for t in r.metadata.tags if t.id in vocabulary]
            here = [i for i in here if i in self.places]
            self.together.update((a, b) for a in here for b in here if a != b)

    def named(self, text: str) -> set[int]:
        """Place tags whose label the text names as a whole word (or words)."""
        if self._pattern is None:
            return set()
        return {self._by_label[m.group(1).lower()] for m in self._pattern.finditer(text)}

    def contradicts(self, suggested: int, named: set[int]) -> bool:
        """A place suggested against the places the text names: not itself named, and never
        carried together with any of them by a training artwork."""
        if suggested not in self.places or not named or suggested in named:
            return False
        label = self._labels[suggested]
        # "Paris, Rue Poissy" for a text naming Paris is a part of the named place, not another one.
        if any(label.startswith(self._labels[n] + ",") for n in named):
            return False
        return not any((suggested, n) in self.together for n in named)


def vocabulary_label(vocabulary: Vocabulary, index: int) -> str:
    """A tag's label as a text would name it (Tate's ``" - non-specific"`` suffix dropped)."""
    return vocabulary.tags[index].label.replace(" - non-specific", "").strip()


def error_breakdown(artworks: Sequence[RankedArtwork], vocabulary: Vocabulary,
                    training: Sequence[CatalogueRecord], most_common: int = 15) -> dict[str, object]:
    """Where the true tags were lost and what the wrong top-five suggestions were (module docstring)."""
    places = PlaceIndex(vocabulary, training)
    fate: Counter[str] = Counter()
    lost_by_area: dict[str, Counter[str]] = {}
    never_proposed: Counter[str] = Counter()
    outside: Counter[str] = Counter()
    right: Counter[str] = Counter()
    wrong: Counter[str] = Counter()
    wrong_tags: Counter[str] = Counter()
    contradictions: Counter[str] = Counter()
    contradiction_examples: list[dict[str, object]] = []
    artists: Counter[str] = Counter()
    gold_by_artist: Counter[str] = Counter()
    for a in artworks:
        meta = a.record.metadata
        artist = meta.artists[0] if meta.artists else ""
        artists[artist] += 1
        gold = a.gold_ids
        gold_by_artist[artist] += len(gold)
        position = {vocabulary.tags[i].id: n for n, i in enumerate(a.ranked)}
        for tag in meta.tags:
            known = vocabulary.get(tag.id)
            area = OUTSIDE if known is None else known.area or NO_AREA
            if known is None:
                where = "outside_vocabulary"
                outside[tag.label or tag.id] += 1
            elif tag.id not in position:
                where = "not_a_candidate"
                never_proposed[tag.label or tag.id] += 1
            elif position[tag.id] >= TOP:
                where = "ranked_below_5"
            else:
                where = "in_top_5"
            fate[where] += 1
            lost_by_area.setdefault(area, Counter())[where] += 1
        named = places.named(build_text(meta))
        for i in a.ranked[:TOP]:
            tag = vocabulary.tags[i]
            area = tag.area or NO_AREA
            if tag.id in gold:
                right[area] += 1
                continue
            wrong[area] += 1
            wrong_tags[tag.label] += 1
            if places.contradicts(i, named):
                contradictions[tag.label] += 1
                if len(contradiction_examples) < 10:
                    contradiction_examples.append({
                        "artwork_id": a.record.artwork_id, "title": meta.title, "suggested": tag.label,
                        "named": sorted(vocabulary_label(vocabulary, n) for n in named)})
    total = sum(fate.values())
    top_artists = [name for name, _ in artists.most_common(10)]
    return {
        "artworks": len(artworks),
        "true_pairs": total,
        "true_pairs_by_fate": {k: fate[k] for k in FATES},
        "true_share_by_fate": {k: fate[k] / total if total else 0.0 for k in FATES},
        "by_area": {
            area: {"true_pairs": sum(c.values()), "in_top_5": c["in_top_5"],
                   "not_a_candidate": c["not_a_candidate"], "outside_vocabulary": c["outside_vocabulary"],
                   "top_5_right": right[area], "top_5_wrong": wrong[area],
                   "top_5_precision": right[area] / (right[area] + wrong[area]) if right[area] + wrong[area] else None}
            for area, c in sorted(lost_by_area.items(), key=lambda kv: -sum(kv[1].values()))},
        "top_5_wrong": sum(wrong.values()),
        "top_5_wrong_tags": wrong_tags.most_common(most_common),
        "never_proposed_tags": never_proposed.most_common(most_common),
        "outside_vocabulary_tags": outside.most_common(most_common),
        "place_contradictions": sum(contradictions.values()),
        "place_contradictions_share_of_wrong": sum(contradictions.values()) / max(1, sum(wrong.values())),
        "place_contradiction_tags": contradictions.most_common(most_common),
        "place_contradiction_examples": contradiction_examples,
        "series": {
            "top_10_artists": [{"artist": n or "(none)", "artworks": artists[n], "true_pairs": gold_by_artist[n]}
                               for n in top_artists],
            "top_10_artists_share_of_artworks": sum(artists[n] for n in top_artists) / max(1, len(artworks)),
            "top_10_artists_share_of_true_pairs": sum(gold_by_artist[n] for n in top_artists) / max(1, total),
        },
    }
