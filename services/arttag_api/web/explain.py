"""A suggestion's explanation as a person reads it: the similar artworks by title, and the
words that matched, marked in the artwork's own text.

The event's explanation is per scorer (:class:`arttag.events.Explanation`); a reader wants
it per kind of evidence: one list of similar artworks (each once, at its best similarity)
and the artwork's fields with the matched words marked. A word is marked in the record's
field it is in (the date, not the byline the model read it in:
:meth:`arttag.catalogue.record_words.RecordWords.source`, which also places the words of
events written before evidence named those fields), and only a word a reader can use
(:func:`arttag.model.readable.readable_term`: no stop words, one-letter fragments, character
n-grams, the embedding's "(whole text)", or zero weights), the rule ``arttag suggest``'s
reasons and the events' summaries follow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from arttag.catalogue.record_words import RecordWords, field_text
from arttag.errors import ConfigurationError
from arttag.events import ArtworkMetadata, NeighbourEvidence, TagSuggestion, TagTextEvidence, TermEvidence
from arttag.model.readable import readable_term
from arttag.scorers.registry import get_scorer_class
from markupsafe import Markup, escape

FIELD_LABELS = {
    "title": "Title", "group_title": "Part of", "artists": "By", "date": "Date", "medium": "Medium",
    "classification": "Classification", "movements": "Movements", "inscription": "Inscription",
    "description": "Description",
}
_FIELD_ALIASES = {"other": ("description", "inscription")}
_MAX_FIELD_CHARS = 400


@lru_cache(maxsize=64)
def scorer_relation(scorer: str) -> str | None:
    """How the artworks ``scorer`` cites relate by the record (:attr:`Scorer.relation`), e.g. "same
    group"; None for a likeness or a scorer the registry does not know (a fake, a remote model's)."""
    try:
        return get_scorer_class(scorer).relation
    except ConfigurationError:
        return None


@dataclass(frozen=True)
class SimilarArtwork:
    artwork_id: str
    title: str
    similarity: float
    relation: str | None = None  # set when only a relational scorer cited it (then no similarity is shown)


@dataclass(frozen=True)
class MarkedField:
    name: str
    label: str
    html: Markup
    words: tuple[str, ...]


@dataclass(frozen=True)
class ReadableExplanation:
    similar: list[SimilarArtwork] = field(default_factory=list)
    fields: list[MarkedField] = field(default_factory=list)
    tag_text_similarity: float | None = None
    scorers: list[str] = field(default_factory=list)
    summary: str = ""


def _pattern(term: str) -> re.Pattern[str] | None:
    # character n-grams keep their edge spaces ("ns "); "(whole text)" is no word either
    if not re.fullmatch(r"\w+(?:[\s'-]+\w+)*", term):
        return None
    words = re.findall(r"\w+", term)
    # a term is a word or a phrase, maybe a stem: match it at the start of a word, any case,
    # and let the last word run on ("harbour" marks "harbours")
    body = r"\W+".join(re.escape(w) for w in words)
    return re.compile(rf"(?<!\w){body}\w*", re.IGNORECASE)


def mark(text: str, terms: list[str]) -> tuple[Markup, tuple[str, ...]]:
    """``text`` escaped, with every match of ``terms`` in ``<mark>``; and the terms that matched."""
    spans: list[tuple[int, int]] = []
    matched = []
    for term in terms:
        pattern = _pattern(term)
        if pattern is None:
            continue
        found = [(m.start(), m.end()) for m in pattern.finditer(text)]
        if found:
            matched.append(term)
            spans += found
    spans.sort()
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, at = [], 0
    for start, end in merged:
        out.append(escape(text[at:start]))
        out.append(Markup("<mark>") + escape(text[start:end]) + Markup("</mark>"))
        at = end
    out.append(escape(text[at:]))
    return Markup("").join(out), tuple(matched)


def _window(text: str, terms: list[str]) -> str:
    """A long field cut to the stretch around its first match (the card stays readable)."""
    if len(text) <= _MAX_FIELD_CHARS:
        return text
    first = min((m.start() for t in terms if (p := _pattern(t)) for m in [p.search(text)] if m), default=0)
    start = max(0, first - _MAX_FIELD_CHARS // 3)
    piece = text[start:start + _MAX_FIELD_CHARS]
    return ("…" if start else "") + piece + ("…" if start + _MAX_FIELD_CHARS < len(text) else "")


def readable(suggestion: TagSuggestion, artwork: ArtworkMetadata | None, max_similar: int = 5) -> ReadableExplanation:
    best: dict[str, SimilarArtwork] = {}
    terms: dict[str, list[str]] = {}
    tag_text = None
    record = RecordWords(artwork) if artwork is not None else None
    for contribution in suggestion.explanation.contributions:
        for evidence in contribution.evidence:
            if isinstance(evidence, NeighbourEvidence):
                # a relational scorer's "similarity" is a vote weight (1 for every member of a
                # group), which a person would misread as a likeness
                relation = scorer_relation(contribution.scorer)
                cited = SimilarArtwork(evidence.artwork_id, evidence.title,
                                       0.0 if relation else evidence.similarity, relation)
                seen = best.get(evidence.artwork_id)
                # a text or embedding similarity wins over a relation; the best similarity over others
                if seen is None or (seen.relation and not relation) or (
                        not relation and not seen.relation and cited.similarity > seen.similarity):
                    best[evidence.artwork_id] = cited
            elif isinstance(evidence, TermEvidence) and record is not None:  # no record: nothing to mark
                evidence = record.place(evidence)
                if not readable_term(evidence, record):
                    continue
                for name in _FIELD_ALIASES.get(evidence.field, (evidence.field,)):
                    if evidence.term not in terms.setdefault(name, []):
                        terms[name].append(evidence.term)
            elif isinstance(evidence, TagTextEvidence):
                tag_text = max(tag_text or 0.0, evidence.similarity)
    similar = sorted(best.values(), key=lambda s: (s.relation is not None, -s.similarity, s.title))[:max_similar]
    fields = []
    if artwork is not None:
        for name, label in FIELD_LABELS.items():
            text = field_text(artwork, name) if name in terms else ""
            if not text:
                continue
            html, words = mark(_window(text, terms[name]), terms[name])
            if words:
                fields.append(MarkedField(name, label, html, words))
    return ReadableExplanation(similar=similar, fields=fields, tag_text_similarity=tag_text,
                               scorers=list(suggestion.scorers), summary=suggestion.explanation.summary)
