"""Which field of an artwork's record a cited word is in, and whether it is whole words there.

The model reads some fields merged (:func:`arttag.catalogue.text.build_fields`): the byline
``by A, B, 1829`` is the artists and the date, ``medium`` is the medium and the
classification, and the TF-IDF vectoriser's last block, named after its first field
(``movements``), is the movements, the inscription and the description; the mention scorer's
``other`` is the description and the inscription. Evidence names the field the model read.
A person wants the field of the record the word is in ('1826' is the date, not an artist),
and :meth:`RecordWords.source` finds it from the record itself, leaving the model's text
alone: the model and the content hash depend on that text byte for byte.
"""

from __future__ import annotations

import re

from arttag.events import ArtworkMetadata, TermEvidence, term_evidence

SOURCES: dict[str, tuple[str, ...]] = {
    "artists": ("artists", "date"),
    "medium": ("medium", "classification"),
    "movements": ("movements", "inscription", "description"),
    "other": ("description", "inscription"),
}
"""A field as the model reads it -> the record's fields it merges, in the order they are tried."""

_WORD = re.compile(r"\w+")
_TERM_SHAPE = re.compile(r"\w+(?:[\s'’\-]+\w+)*")


def field_text(meta: ArtworkMetadata, field: str) -> str:
    """The record's own text of ``field`` (a field of :class:`ArtworkMetadata`, or ``other``)."""
    if field == "artists":
        return ", ".join(meta.artists)
    if field == "movements":
        return ", ".join(meta.movements)
    if field == "date":
        return meta.date or (str(meta.year) if meta.year is not None else "")
    if field == "other":
        return ". ".join(t for t in (meta.description, meta.inscription) if t)
    if field in ("title", "group_title", "medium", "classification", "inscription", "description"):
        return getattr(meta, field) or ""
    return ""


def _forms(word: str) -> tuple[str, ...]:
    # the mention scorer cites its labels' words singular ("harbour" for "Harbours",
    # "city" for "cities"): a cited word also matches its plural in the record
    forms = (word, word + "s", word + "es")
    return forms + (word[:-1] + "ies",) if word.endswith("y") else forms


class RecordWords:
    """One artwork's fields as lower-case words, each field split on first use."""

    def __init__(self, meta: ArtworkMetadata) -> None:
        self.meta = meta
        self._fields: dict[str, tuple[list[str], set[str]]] = {}

    def _words(self, field: str) -> tuple[list[str], set[str]]:
        hit = self._fields.get(field)
        if hit is None:
            words = _WORD.findall(field_text(self.meta, field).lower())
            hit = self._fields[field] = (words, set(words))
        return hit

    def holds(self, term: str, field: str) -> bool:
        """Whether ``term`` is one or more consecutive whole words of the record's ``field``
        (any case, any punctuation between them): not a character n-gram cut from a word,
        nor the builder's own word ("by" of the byline)."""
        words, known = self._words(field)
        if not words:
            return False
        low = term.lower()
        if low.isalnum():  # one word, most terms: no pattern needed
            return any(form in known for form in _forms(low))
        if not _TERM_SHAPE.fullmatch(term):
            return False
        wanted = [_forms(w) for w in _WORD.findall(low)]
        if not all(any(form in known for form in forms) for forms in wanted):
            return False
        last = len(words) - len(wanted)
        return any(all(words[start + j] in forms for j, forms in enumerate(wanted))
                   for start in range(last + 1) if words[start] in wanted[0])

    def source(self, field: str, term: str) -> str:
        """The record's field ``term`` came from, when ``field`` merges several and one of them
        holds it whole; otherwise ``field`` (a phrase across two of them, "turner 1829", or a
        word the builder added, stays where the model read it)."""
        for name in SOURCES.get(field, ()):
            if self.holds(term, name):
                return name
        return field

    def place(self, evidence: TermEvidence) -> TermEvidence:
        """``evidence`` naming the field :meth:`source` finds (itself when that is the field it
        names): events written before evidence named the record's own fields say "artists"
        for the date too."""
        field = self.source(evidence.field, evidence.term)
        return evidence if field == evidence.field else term_evidence(field, evidence.term, evidence.weight)
