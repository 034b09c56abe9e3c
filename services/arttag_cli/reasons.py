"""Readable reasons for a suggestion, from the evidence the event carries.

The event keeps every piece of evidence (the stream's consumers and ``--explain full`` see
it all); a person reading a reason wants what a cataloguer would say: which catalogued
artworks carry the tag (by title), and which words of this artwork point at it. So evidence
with no weight, stop words and character n-gram fragments (the linear scorer's features
include ``'bea'`` and ``' suns'``) are left out here, and nowhere else.
"""

from __future__ import annotations

import re

from arttag.events import (
    ArtworkMetadata,
    NeighbourEvidence,
    TagSuggestion,
    TermEvidence,
)
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

MAX_TITLES = 3
MAX_WORDS = 3
TITLE_CHARS = 40


def _field_text(meta: ArtworkMetadata, field: str) -> str:
    value = getattr(meta, field, None)
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value) if value is not None else ""


def is_whole_words(term: str, text: str) -> bool:
    """Whether ``term`` is one or more whole words of ``text`` (not a fragment of a word)."""
    term = term.strip()
    if not term or term != term.strip(" ") or not re.search(r"\w", term):
        return False
    return re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text, flags=re.IGNORECASE) is not None


def readable_term(term: TermEvidence, meta: ArtworkMetadata) -> bool:
    """A word or phrase of the artwork that means something to a reader."""
    if term.weight <= 0 or term.term != term.term.strip():
        return False
    words = term.term.lower().split()
    # 'beach at', 'watercolour on': a phrase cut at a stop word says no more than its other word
    if not words or words[0] in ENGLISH_STOP_WORDS or words[-1] in ENGLISH_STOP_WORDS:
        return False
    return is_whole_words(term.term, _field_text(meta, term.field))


def _short(title: str) -> str:
    return title if len(title) <= TITLE_CHARS else title[: TITLE_CHARS - 1].rstrip() + "…"


def reason(suggestion: TagSuggestion, meta: ArtworkMetadata) -> str:
    """One line: the artworks that carry the tag, and the artwork's words that name it."""
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
                if not readable_term(ev, meta):
                    continue
                if contribution.scorer == "mention":
                    mentions.setdefault(ev.field, []).append(ev.term)
                elif ev.term.lower() not in words or ev.weight > words[ev.term.lower()][1]:
                    words[ev.term.lower()] = (ev.field, ev.weight)
            elif ev.similarity > 0:
                tag_text = max(tag_text or 0.0, ev.similarity)
    parts = []
    if neighbours:
        best = sorted(neighbours.values(), key=lambda e: -e.similarity)
        cited = ", ".join(f"'{_short(e.title or e.artwork_id)}' {e.similarity:.2f}" for e in best[:MAX_TITLES])
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
