"""The contracts the stream worker and the API call: :class:`Tagger` (suggestions) and
:class:`TagCatalogue` (the vocabulary behind them); a trained bundle implements both."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from arttag.catalogue.vocabulary import Tag, Vocabulary
from arttag.events import ArtworkMetadata, TagSuggestion


class SuggestOptions(BaseModel):
    """Filters applied after ranking."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    limit: int = Field(10, ge=1, le=200)
    min_confidence: float = Field(0.0, ge=0.0, le=1.0)
    include_tags: list[str] | None = Field(None, description="Only these tag ids")
    exclude_tags: list[str] = Field(default_factory=list)
    include_groups: list[str] | None = Field(None, description="Only tags of these level-1 groups")
    exclude_groups: list[str] = Field(default_factory=list)
    only_new: bool = Field(False, description="Leave out tags the artwork already has")

    def keeps(self, tag_id: str, group: str | None, assigned: set[str]) -> bool:
        """Whether a ranked tag passes the tag, group and ``only_new`` filters (``assigned``: the
        artwork's own tag ids); ``limit`` and ``min_confidence`` are the ranking loop's."""
        if self.include_tags is not None and tag_id not in self.include_tags:
            return False
        if tag_id in self.exclude_tags:
            return False
        if self.include_groups is not None and (group or "") not in self.include_groups:
            return False
        if (group or "") in self.exclude_groups:
            return False
        return not (self.only_new and tag_id in assigned)


@runtime_checkable
class Tagger(Protocol):
    """Ranked, explained tag suggestions for a batch of artworks.

    Example::

        tagger = open_tagger(settings.bundle_dir, settings.encoder)
        [suggestions] = tagger.suggest([ArtworkMetadata(title="Town on Hill")])
    """

    @property
    def model_version(self) -> str: ...

    def suggest(
        self, artworks: Sequence[ArtworkMetadata], options: SuggestOptions | None = None
    ) -> list[list[TagSuggestion]]: ...


@runtime_checkable
class Prefetching(Protocol):
    """A tagger that can encode a batch ahead of the :meth:`Tagger.suggest` that needs it
    (:class:`arttag.model.bundle.BundleTagger`): the stream worker encodes its next batch
    while the current one is scored."""

    def prefetch(self, artworks: Sequence[ArtworkMetadata]) -> int: ...


@runtime_checkable
class TagCatalogue(Protocol):
    """The tags a tagger suggests from: the API's vocabulary lookups and tag search.

    Example::

        tag = tagger.vocabulary.get("1234")
        hits = tagger.search_tags_semantic("sailing ships", limit=5)  # [(Tag, similarity), ...]
    """

    @property
    def vocabulary(self) -> Vocabulary: ...

    def search_tags_semantic(self, query: str, limit: int = 20) -> list[tuple[Tag, float]]:
        """Tags whose text is closest in meaning to ``query``, best first; raises
        :class:`arttag.errors.ModelError` when this tagger cannot search by meaning."""
        ...


@runtime_checkable
class CatalogueTagger(Tagger, TagCatalogue, Protocol):
    """Both contracts: what the API serves (:class:`arttag.model.bundle.BundleTagger`, :class:`arttag.testing.FakeTagger`)."""


@dataclass(frozen=True)
class TaggedArtwork:
    """An artwork with the tags it is known to carry, for a tagger to learn online
    (:meth:`arttag.model.bundle.BundleTagger.learn`); no tags: forget the artwork."""

    artwork_id: str
    artwork: ArtworkMetadata
    tag_ids: frozenset[str]


class LearningSource(Protocol):
    """Where a tagger takes the artworks it learns online from (:class:`arttag.curation.learning.OnlineLearner`).

    Positions are opaque counters: a tagger starts at 0 and passes back the position it was
    given, so each tagger (a new one after a bundle swap too) gets everything exactly once.
    """

    def examples_since(self, position: int) -> tuple[list[TaggedArtwork], int]:
        """The artworks that changed since ``position`` (each once, its newest state) and the new position."""
        ...
