"""The Tagger contract the stream worker and the API call; a trained bundle implements it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

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


@runtime_checkable
class Tagger(Protocol):
    """Ranked, explained tag suggestions for a batch of artworks.

    Example::

        tagger = load_tagger(settings.bundle_dir, settings.encoder)
        [suggestions] = tagger.suggest([ArtworkMetadata(title="Town on Hill")])
    """

    @property
    def model_version(self) -> str: ...

    def suggest(
        self, artworks: Sequence[ArtworkMetadata], options: SuggestOptions | None = None
    ) -> list[list[TagSuggestion]]: ...
