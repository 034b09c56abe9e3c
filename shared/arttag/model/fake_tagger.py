"""A deterministic tagger that ships with the library, for tests and demos without a trained bundle.

It implements :class:`arttag.model.tagger.Tagger` and :class:`arttag.model.tagger.TagCatalogue`, so the
stream worker, the API and the audit run on it unchanged. Example::

    horse = Tag("1", "horse", "animals: mammals")
    tagger = FakeTagger([TitleRule("Horse", horse, 0.9)], delay_s=0.1, fail_on="POISON")
    [[suggestion]] = tagger.suggest([ArtworkMetadata(title="Horse in a field")])
    assert suggestion.explanation.summary == "title word 'Horse'"
    assert tagger.calls == [1]
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from arttag.catalogue.vocabulary import Tag, Vocabulary
from arttag.errors import ModelError
from arttag.events import (
    ArtworkMetadata,
    Explanation,
    ScorerContribution,
    TagSuggestion,
    TermEvidence,
)
from arttag.model.tagger import SuggestOptions

SCORER = "fake"


@dataclass(frozen=True)
class TitleRule:
    """Suggest ``tag`` with ``confidence`` when ``word`` occurs in the artwork's title (case-sensitive)."""

    word: str
    tag: Tag
    confidence: float = 0.9


class FakeTagger:
    """Suggestions from title words, each explained by the word (one ``fake`` contribution).

    With ``rules``: the tag of every rule whose word is in the title, most confident first
    (ties in rule order). Without: the title's first word, lower-cased, as tag id and label,
    with ``confidence``. ``options`` filter as in a bundle (limit, minimum confidence, tags,
    groups, ``only_new``). ``delay_s`` holds every call that long (a slow model); a title
    containing ``fail_on`` fails the whole call with ``failure(message)``: by default
    :class:`~arttag.errors.ModelError` (a model that breaks on one artwork); a
    :class:`BaseException` that is no :class:`Exception` stands for the process dying, which no
    ``except Exception`` sees. ``calls`` records the size of every call.

    The vocabulary is ``vocabulary``, or the rules' tags; :meth:`search_tags_semantic`
    ranks its tags by the share of the query's words their label contains.
    """

    def __init__(self, rules: Sequence[TitleRule] = (), *, vocabulary: Vocabulary | None = None,
                 model_version: str = "fake-1", confidence: float = 0.8, delay_s: float = 0.0,
                 fail_on: str | None = None,
                 failure: Callable[[str], BaseException] = ModelError) -> None:
        self.rules = list(rules)
        self._vocabulary = vocabulary if vocabulary is not None else Vocabulary(
            {r.tag.id: r.tag for r in self.rules}.values())
        self._model_version = model_version
        self.confidence = confidence
        self.delay_s = delay_s
        self.fail_on = fail_on
        self.failure = failure
        self.calls: list[int] = []
        self._lock = threading.Lock()

    @property
    def model_version(self) -> str:
        return self._model_version

    @property
    def vocabulary(self) -> Vocabulary:
        return self._vocabulary

    def suggest(self, artworks: Sequence[ArtworkMetadata],
                options: SuggestOptions | None = None) -> list[list[TagSuggestion]]:
        options = options or SuggestOptions()
        with self._lock:
            self.calls.append(len(artworks))
        if self.delay_s:
            time.sleep(self.delay_s)
        for artwork in artworks:
            if self.fail_on is not None and self.fail_on in artwork.title:
                raise self.failure(f"fake tagger fails on titles with {self.fail_on!r}: {artwork.title!r}")
        return [self._suggest_one(artwork, options) for artwork in artworks]

    def _matches(self, title: str) -> list[tuple[str, Tag, float]]:
        if self.rules:
            hits = [(r.word, r.tag, r.confidence) for r in self.rules if r.word in title]
            return sorted(hits, key=lambda h: -h[2])
        words = title.split()
        if not words:
            return []
        word = words[0].lower()
        return [(word, Tag(word, word), self.confidence)]

    def _suggest_one(self, artwork: ArtworkMetadata, options: SuggestOptions) -> list[TagSuggestion]:
        assigned = {t.id for t in artwork.tags}
        out: list[TagSuggestion] = []
        for word, tag, confidence in self._matches(artwork.title):
            if len(out) >= options.limit or confidence < options.min_confidence:
                break
            if not options.keeps(tag.id, tag.group, assigned):
                continue
            out.append(TagSuggestion(
                tag_id=tag.id, label=tag.label, group=tag.group, score=confidence, confidence=confidence,
                scorers=[SCORER], already_assigned=tag.id in assigned,
                explanation=Explanation(summary=f"title word '{word}'", contributions=[ScorerContribution(
                    scorer=SCORER, score=confidence, rank=len(out) + 1,
                    evidence=[TermEvidence(field="title", term=word, weight=1.0)])]),
            ))
        return out

    def search_tags_semantic(self, query: str, limit: int = 20) -> list[tuple[Tag, float]]:
        words = set(_words(query))
        if not words:
            return []
        scored = [(tag, len(words & set(_words(tag.label))) / len(words)) for tag in self._vocabulary]
        hits = [(tag, score) for tag, score in scored if score > 0]
        hits.sort(key=lambda h: -h[1])  # stable: ties keep vocabulary order
        return hits[:limit]


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())
