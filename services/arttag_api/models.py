"""Payload shapes of the HTTP API: ``XCreate`` comes in, ``XPublic`` goes out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from arttag.events import ArtworkMetadata, AssignedTag, FeedbackActor, TagSuggestion
from arttag.model.tagger import SuggestOptions
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator


def normalise_json(value: Any) -> Any:
    """What JSON allows but strict pydantic refuses, made acceptable: ``14.0`` where an integer
    is due (JSON Schema counts it as one), and lone UTF-16 surrogates from ``\\ud800``-style
    escapes (valid JSON grammar), which become U+FFFD."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [normalise_json(v) for v in value]
    if isinstance(value, dict):
        return {normalise_json(k): normalise_json(v) for k, v in value.items()}
    return value


class _In(BaseModel):
    # requests are strict: a misspelt option or a 0 for a boolean is a 422, not silently coerced
    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        return normalise_json(data)


# Strict variants of the core contracts for request bodies. They are subclasses,
# so the tagger receives ArtworkMetadata and SuggestOptions as the protocol says.

class AssignedTagCreate(AssignedTag):
    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)

    # Tate's tag ids are integers and are accepted as such (carried as strings); say so in the spec
    id: Annotated[str, WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "integer"}],
                                       "title": "Id", "description": "Tag id; integers become strings"})]


class ArtworkCreate(ArtworkMetadata):
    """Catalogue metadata of one artwork, as in Tate's collection data; unknown fields are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)

    # bounded, so no client can push an absurd number into the model's features
    year: int | None = Field(None, ge=-5000, le=3000)
    acquisition_year: int | None = Field(None, ge=-5000, le=3000)
    tags: list[AssignedTagCreate] = Field(default_factory=list, description="Tags it already has")


class SuggestOptionsCreate(SuggestOptions):
    """Filters applied after ranking."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class FeedbackActorCreate(FeedbackActor):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class SuggestCreate(_In):
    """One artwork's metadata and how to filter its suggestions."""

    artwork: ArtworkCreate
    options: SuggestOptionsCreate = Field(default_factory=SuggestOptionsCreate)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "artwork": {"title": "A Fishing Boat in Dieppe Harbour", "artists": ["Joseph Mallord William Turner"],
                    "medium": "Watercolour on paper", "year": 1826},
        "options": {"limit": 5, "min_confidence": 0.1, "only_new": True},
    }]})


class SuggestionsPublic(BaseModel):
    model_version: str
    suggestions: list[TagSuggestion] = Field(description="Ranked, best first, each with its explanation")


class BatchItemCreate(_In):
    id: str | None = Field(None, max_length=200, description="Echoed back, to match results to inputs")
    artwork: ArtworkCreate


class SuggestBatchCreate(_In):
    artworks: list[BatchItemCreate] = Field(min_length=1, description="At most ARTTAG_MAX_BATCH items")
    options: SuggestOptionsCreate = Field(default_factory=SuggestOptionsCreate)


class BatchItemPublic(BaseModel):
    id: str | None = None
    suggestions: list[TagSuggestion]


class SuggestBatchPublic(BaseModel):
    model_version: str
    results: list[BatchItemPublic] = Field(description="One per input artwork, in input order")


class LatestSuggestionsPublic(BaseModel):
    """What the stream last published for an artwork (from ``tags.suggestions.latest.v1``)."""

    artwork_id: str
    revision: int
    suggestion_id: str
    model_version: str
    content_hash: str
    produced_at: datetime
    suggestions: list[TagSuggestion]


class FeedbackCreate(_In):
    """A curator's judgement on one tag of one artwork."""

    artwork_id: str = Field(min_length=1, max_length=200)
    tag_id: str = Field(min_length=1, max_length=500)
    tag_label: str | None = Field(None, max_length=500, description="Filled from the vocabulary when omitted")
    action: Literal["accepted", "rejected", "added"]
    actor: FeedbackActorCreate | None = Field(
        None, description="Who gave the feedback: required with an integration key; with a curator's key "
        "the curator of the key is the actor and this is ignored",
    )
    suggestion_id: str | None = Field(None, max_length=500)
    model_version: str | None = Field(None, max_length=200)
    comment: str | None = Field(None, max_length=2000)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "artwork_id": "T07799", "tag_id": "1050", "action": "accepted",
        "actor": {"kind": "curator", "id": "jsmith"},
    }]})


class FeedbackPublic(BaseModel):
    event_id: str = Field(description="The published TagFeedbackGiven event's id")
    topic: str
    status: Literal["published"] = "published"


class VoteCreate(_In):
    """A public contributor's vote on one suggested tag of one artwork."""

    artwork_id: str = Field(min_length=1, max_length=200)
    tag_id: str = Field(min_length=1, max_length=500)
    vote: Literal["accept", "reject"]
    suggestion_id: str | None = Field(None, max_length=500)
    model_version: str | None = Field(None, max_length=200)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "artwork_id": "T07799", "tag_id": "1050", "vote": "accept",
    }]})


class ContributorPublic(BaseModel):
    contributor_id: str = Field(description="pub- and 16 hex digits; the actor id of this contributor's votes")
    token: str = Field(description="The secret to send in X-Contributor-Token; shown once, stored only as a digest")


class ArtworkPublic(BaseModel):
    """An artwork's newest catalogue record, as the artwork topics tell it."""

    artwork_id: str
    revision: int
    artwork: ArtworkMetadata


class VotePublic(BaseModel):
    contributor_id: str
    vote: Literal["accept", "reject"]
    at: datetime


class TagStatePublic(BaseModel):
    """One tag's curation state. ``votes_for`` / ``votes_against``: public contributors whose newest
    vote accepts / rejects it (weight above 0, as consensus counts them)."""

    tag_id: str
    label: str | None = None
    group: str | None = None
    status: Literal["accepted", "rejected", "proposed"]
    decided_by: Literal["curator", "consensus"] | None = None
    curator_id: str | None = None
    decided_at: datetime | None = None
    suggestion_id: str | None = None
    model_version: str | None = None
    votes_for: int = 0
    votes_against: int = 0
    votes: list[VotePublic] = Field(default_factory=list, description="Each vote with its contributor; "
                                    "only a curator's key sees them, others get the counts")


class ArtworkDecisionsPublic(BaseModel):
    artwork_id: str
    tags: list[TagStatePublic] = Field(description="Every tag anybody gave feedback on, by tag id")


class ReviewItemPublic(BaseModel):
    artwork_id: str
    title: str | None = Field(None, description="From the catalogue; null while it is not known here")
    group_title: str | None = None
    model_version: str
    undecided: int = Field(description="Suggested tags (within the band asked for) neither accepted nor rejected")
    top_confidence: float
    near_consensus: int = Field(description="Undecided tags one public vote away from consensus")
    priority: float = Field(description="Summed confidence of the undecided suggestions in the uncertain "
                            "(medium) band")


class ReviewQueuePublic(BaseModel):
    items: list[ReviewItemPublic]
    total: int = Field(description="Artworks in the queue under these filters, before limit and offset")
    rule: str


class TagPublic(BaseModel):
    id: str
    label: str
    group: str | None = None
    area: str | None = None
    usage: int = Field(description="Training artworks carrying the tag")


class TagHitPublic(TagPublic):
    match: Literal["prefix", "semantic"]
    score: float | None = Field(None, description="Cosine similarity for semantic matches")


class TagSearchPublic(BaseModel):
    query: str
    mode: Literal["prefix", "semantic", "both"]
    tags: list[TagHitPublic]


class HealthPublic(BaseModel):
    status: Literal["ok"] = "ok"


class ReadinessPublic(BaseModel):
    ready: bool
    model_loaded: bool
    model_version: str | None = None
    broker_reachable: bool
    latest_view: Literal["disabled", "catching_up", "caught_up", "error"]
    latest_view_artworks: int = 0
    catalogue: Literal["disabled", "catching_up", "caught_up", "error"] = "disabled"
    catalogue_artworks: int = 0
    detail: list[str] = Field(default_factory=list)
