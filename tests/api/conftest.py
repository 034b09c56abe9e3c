"""API test fixtures: a tiny in-memory tagger (until a real bundle is trained in a fixture)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from arttag.events import ArtworkMetadata, Explanation, ScorerContribution, TagSuggestion, TermEvidence
from arttag.tagger import SuggestOptions
from arttag.vocabulary import Tag, Vocabulary

TAGS = [
    Tag("1050", "harbour", "seascapes and coasts", "places", usage=40),
    Tag("1051", "boat", "ships and boats", "objects", usage=90),
    Tag("1052", "boats, fishing", "ships and boats", "objects", usage=12),
    Tag("2001", "hill", "landscape", "nature", usage=25),
    Tag("2002", "town", "townscapes, man-made features", "places", usage=33),
]


class FakeTagger:
    """Suggests every tag, scoring words of the title that start a label highest."""

    model_version = "fake-1"

    def __init__(self) -> None:
        self.vocabulary = Vocabulary(TAGS)
        self.calls: list[int] = []

    def suggest(self, artworks: Sequence[ArtworkMetadata],
                options: SuggestOptions | None = None) -> list[list[TagSuggestion]]:
        options = options or SuggestOptions()
        self.calls.append(len(artworks))
        return [self._one(a, options) for a in artworks]

    def _one(self, artwork: ArtworkMetadata, options: SuggestOptions) -> list[TagSuggestion]:
        words = artwork.title.lower().split()
        assigned = {t.id for t in artwork.tags}
        out = []
        for tag in self.vocabulary:
            hit = any(tag.label.startswith(w[:4]) for w in words if len(w) >= 4)
            confidence = 0.9 if hit else 0.05
            if confidence < options.min_confidence:
                continue
            if options.include_tags is not None and tag.id not in options.include_tags:
                continue
            if tag.id in options.exclude_tags or (options.only_new and tag.id in assigned):
                continue
            if options.include_groups is not None and tag.group not in options.include_groups:
                continue
            if tag.group in options.exclude_groups:
                continue
            out.append(TagSuggestion(
                tag_id=tag.id, label=tag.label, group=tag.group, score=confidence,
                confidence=confidence, scorers=["fake"], already_assigned=tag.id in assigned,
                explanation=Explanation(summary=f"title words vs {tag.label!r}", contributions=[
                    ScorerContribution(scorer="fake", score=confidence, rank=1, evidence=[
                        TermEvidence(field="title", term=tag.label, weight=confidence)])]),
            ))
        out.sort(key=lambda s: -s.score)
        return out[: options.limit]

    def search_tags_semantic(self, query: str, limit: int = 20) -> list[tuple[Tag, float]]:
        return [(t, 0.5) for t in self.vocabulary.tags[:limit]]


@pytest.fixture
def fake_tagger() -> FakeTagger:
    return FakeTagger()


@pytest.fixture(scope="module")
def fake_tagger_module() -> FakeTagger:
    return FakeTagger()
