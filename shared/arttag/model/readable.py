"""Evidence as a person reads it: the words worth showing, and a one-line reason per tag.

An event keeps every piece of evidence (the stream's consumers and ``arttag suggest --explain
full`` see it all). What people read (the event's summary, ``arttag suggest``'s reasons, the
demo and ``arttag tail``, the review desk's marked words) leaves out what says nothing to them:
evidence with no weight, stop words, phrases that begin or end with one ("watercolour on"),
one-letter words (the possessive "s" of "Lott's"), and character n-grams (the linear scorer's
features include ``'bea'`` and ``' suns'``), which are not whole words of the record.
:func:`readable_term` is that one rule for all of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from arttag.catalogue.record_words import RecordWords
from arttag.events import (
    ArtworkMetadata,
    Evidence,
    NeighbourEvidence,
    TagSuggestion,
    TermEvidence,
)
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

# scikit-learn's list holds a few nouns that name what artworks show; those are kept
STOP_WORDS = ENGLISH_STOP_WORDS - {
    "fire", "mill", "bill", "well", "cry", "top", "bottom", "front", "back", "side", "detail",
    "part", "system", "empty", "full", "thick", "thin", "interest", "name", "show",
}
# word endings an apostrophe splits off ("we'll", "they've"): fragments, not words
_CONTRACTIONS = frozenset({"ll", "ve", "re"})
_WORD = re.compile(r"\w+")

MAX_TITLES = 3
MAX_WORDS = 3
TITLE_CHARS = 100


def readable_term(term: TermEvidence, record: RecordWords | ArtworkMetadata) -> bool:
    """A word or phrase of the artwork's record, in the field the evidence names, that means
    something to a reader: a positive weight, at least two characters a word, no stop word
    at either end, and whole words of that field."""
    if term.weight <= 0 or term.term != term.term.strip():
        return False
    low = term.term.lower()
    words = [low] if low.isalnum() else _WORD.findall(low)
    if not words or words[0] in STOP_WORDS or words[-1] in STOP_WORDS:
        return False
    if any(len(w) < 2 or w in _CONTRACTIONS for w in words):
        return False
    if isinstance(record, ArtworkMetadata):
        record = RecordWords(record)
    return record.holds(term.term, term.field)


def readable_evidence(evidence: Sequence[Evidence], record: RecordWords) -> list[Evidence]:
    """``evidence`` less what a reader cannot use: artworks and tag texts of no similarity,
    terms that are not :func:`readable_term`, and a term said already in the same field (a
    word and a character n-gram can be the same letters)."""
    out = []
    said = set()
    for e in evidence:
        if type(e) is TermEvidence:
            if readable_term(e, record) and (e.field, e.term) not in said:
                said.add((e.field, e.term))
                out.append(e)
        elif e.similarity > 0:
            out.append(e)
    return out


def short_title(title: str, limit: int = TITLE_CHARS) -> str:
    """A title whole; one longer than ``limit`` cut at the last word boundary before it."""
    if len(title) <= limit:
        return title
    cut = title[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit * 2 // 3 else cut).rstrip(" ,;:-") + " …"


def reason(suggestion: TagSuggestion, meta: ArtworkMetadata) -> str:
    """One line: the artworks that carry the tag, and the artwork's words that name it."""
    record = RecordWords(meta)
    neighbours: dict[str, NeighbourEvidence] = {}
    mentions: dict[str, list[str]] = {}
    words: dict[str, tuple[str, float]] = {}
    tag_text: float | None = None
    for contribution in suggestion.explanation.contributions:
        for ev in contribution.evidence:
            if ev.kind == "neighbour":
                if ev.similarity > 0 and (ev.artwork_id not in neighbours
                                          or ev.similarity > neighbours[ev.artwork_id].similarity):
                    neighbours[ev.artwork_id] = ev
            elif ev.kind == "term":
                ev = record.place(ev)
                if not readable_term(ev, record):
                    continue
                if contribution.scorer == "mention":
                    if ev.term not in mentions.setdefault(ev.field, []):
                        mentions[ev.field].append(ev.term)
                elif ev.term.lower() not in words or ev.weight > words[ev.term.lower()][1]:
                    words[ev.term.lower()] = (ev.field, ev.weight)
            elif ev.similarity > 0:
                tag_text = max(tag_text or 0.0, ev.similarity)
    parts = []
    if neighbours:
        best = sorted(neighbours.values(), key=lambda e: -e.similarity)
        cited = ", ".join(f"'{short_title(e.title or e.artwork_id)}' {e.similarity:.2f}" for e in best[:MAX_TITLES])
        count = len(best)
        parts.append(f"{count} similar catalogued artwork{'s' if count > 1 else ''} "
                     f"carr{'y' if count > 1 else 'ies'} it: {cited}")
    named = {t.lower() for terms in mentions.values() for t in terms}
    for field, terms in mentions.items():
        label = field.replace("_", " ")
        parts.append(f"the {label} names " + ", ".join(f"'{t}'" for t in terms[:MAX_WORDS]))
    other = [(t, f) for t, (f, _) in sorted(words.items(), key=lambda kv: -kv[1][1]) if t not in named]
    if other:
        parts.append("words " + ", ".join(f"'{t}' ({f.replace('_', ' ')})" for t, f in other[:MAX_WORDS]))
    if not parts and tag_text is not None:
        parts.append(f"the tag's label resembles the text ({tag_text:.2f})")
    return "; ".join(parts) if parts else "ranked by the model (no evidence a reader can check)"


def full_evidence(suggestion: TagSuggestion) -> list[str]:
    """Every piece of evidence, one line each, as the event carries it."""
    lines = []
    for c in suggestion.explanation.contributions:
        lines.append(f"{c.scorer}: score {c.score:.3f}" + (f", rank {c.rank}" if c.rank else ""))
        for ev in c.evidence:
            if ev.kind == "neighbour":
                lines.append(f"  similar artwork {ev.artwork_id} '{ev.title}' (similarity {ev.similarity:.2f})")
            elif ev.kind == "term":
                lines.append(f"  '{ev.term}' in {ev.field} (weight {ev.weight:.3f})")
            else:
                lines.append(f"  tag text '{ev.tag_text}' (similarity {ev.similarity:.2f})")
    return lines
