"""API test fixtures: the real tagger of a bundle trained once per session, and a spy around it."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from arttag.events import ArtworkMetadata, TagSuggestion
from arttag.tagger import SuggestOptions


class SpyTagger:
    """Delegates to a real tagger and records the size of every ``suggest`` call."""

    def __init__(self, tagger) -> None:  # noqa: ANN001 - a BundleTagger
        self._tagger = tagger
        self.calls: list[int] = []

    @property
    def model_version(self) -> str:
        return self._tagger.model_version

    @property
    def vocabulary(self):  # noqa: ANN201
        return self._tagger.vocabulary

    def suggest(self, artworks: Sequence[ArtworkMetadata],
                options: SuggestOptions | None = None) -> list[list[TagSuggestion]]:
        self.calls.append(len(artworks))
        return self._tagger.suggest(artworks, options)

    def search_tags_semantic(self, query: str, limit: int = 20):  # noqa: ANN201
        return self._tagger.search_tags_semantic(query, limit)


@pytest.fixture(scope="session")
def bundle_tagger(hashing_bundle_dir):
    from arttag.bundle import load_tagger

    tagger = load_tagger(hashing_bundle_dir)
    tagger.suggest([ArtworkMetadata(title="warm-up")])  # the first call loads lazily; keep it out of tests
    return tagger


@pytest.fixture
def tagger(bundle_tagger) -> SpyTagger:
    return SpyTagger(bundle_tagger)
