"""Event contracts: frozen, versioned pydantic models for every message arttag reads or writes.

What we consume is tolerant (unknown fields are ignored, so the catalogue can
add fields without breaking us); what we produce is strict (``extra="forbid"``).
JSON Schemas for all of them are generated into ``schemas/`` by
``arttag schemas export``.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timezone
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from arttag.errors import EventDecodeError

SCHEMA_VERSION = 1


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def new_event_id() -> str:
    return str(uuid.uuid4())


class _Consumed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class _Produced(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _as_str_id(value: Any) -> Any:
    # Tate ids are integers; other collections use strings or URIs. We carry strings.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class AssignedTag(_Consumed):
    """A tag a cataloguer already gave the artwork."""

    id: str
    label: str | None = Field(None, description="Tag label, e.g. 'harbour'")
    group: str | None = Field(None, description="Level-1 group, e.g. 'seascapes and coasts'")

    _coerce_id = field_validator("id", mode="before")(_as_str_id)


class ArtworkMetadata(_Consumed):
    """Catalogue metadata of one artwork, as in Tate's collection data."""

    title: str = Field(min_length=1)
    artists: list[str] = Field(default_factory=list)
    date: str | None = None
    year: int | None = None
    medium: str | None = None
    classification: str | None = None
    dimensions: str | None = None
    group_title: str | None = Field(None, description="e.g. the sketchbook a drawing belongs to")
    inscription: str | None = None
    movements: list[str] = Field(default_factory=list)
    description: str | None = None
    acquisition_year: int | None = None
    accession_number: str | None = Field(
        None, max_length=64,
        description="The museum's accession number, e.g. D12345; neighbouring numbers were often catalogued together",
    )
    tags: list[AssignedTag] = Field(default_factory=list)


class _ArtworkEventBase(_Consumed):
    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: str = Field(default_factory=new_event_id)
    occurred_at: datetime = Field(default_factory=utc_now)
    source: str = Field("catalogue", description="System that emitted the event")
    artwork_id: str = Field(min_length=1, description="Also the Kafka message key")
    revision: int = Field(ge=0, description="Catalogue revision; higher is newer")
    artwork: ArtworkMetadata

    _coerce_id = field_validator("artwork_id", mode="before")(_as_str_id)


class ArtworkCreated(_ArtworkEventBase):
    """An artwork entered the catalogue. Topic ``artworks.created.v1``, key = artwork id."""

    event_type: Literal["artwork.created"] = "artwork.created"


class ArtworkUpdated(_ArtworkEventBase):
    """An artwork's record changed. Topic ``artworks.updated.v1``, key = artwork id."""

    event_type: Literal["artwork.updated"] = "artwork.updated"


ArtworkEvent = Annotated[Union[ArtworkCreated, ArtworkUpdated], Field(discriminator="event_type")]


class NeighbourEvidence(_Produced):
    """A training artwork carrying the tag, similar to this one; it contributed to the score."""

    kind: Literal["neighbour"] = "neighbour"
    artwork_id: str
    title: str
    similarity: float


class TermEvidence(_Produced):
    """A word of a metadata field that pushed a linear model towards the tag."""

    kind: Literal["term"] = "term"
    field: str
    term: str
    weight: float


class TagTextEvidence(_Produced):
    """The tag text the artwork's embedding was compared with."""

    kind: Literal["tag_text"] = "tag_text"
    tag_text: str
    similarity: float


Evidence = Annotated[
    Union[NeighbourEvidence, TermEvidence, TagTextEvidence], Field(discriminator="kind")
]


class ScorerContribution(_Produced):
    """What one scorer said about one tag, with the evidence that produced it."""

    scorer: str
    score: float
    rank: int | None = Field(None, description="1-based rank among this scorer's candidates")
    evidence: list[Evidence] = Field(default_factory=list)


class Explanation(_Produced):
    summary: str
    contributions: list[ScorerContribution]


class TagSuggestion(_Produced):
    tag_id: str
    label: str
    group: str | None = None
    score: float = Field(description="Re-ranker score used for ordering")
    confidence: float = Field(ge=0.0, le=1.0, description="Calibrated probability a cataloguer would assign it")
    scorers: list[str] = Field(description="Scorers that proposed this tag as a candidate")
    already_assigned: bool = Field(description="A human already gave the artwork this tag")
    explanation: Explanation


class TagSuggestionsPublished(_Produced):
    """Ranked tag suggestions for one artwork revision. Topics ``tags.suggestions.v1`` and
    ``tags.suggestions.latest.v1`` (compacted), key = artwork id.

    ``suggestion_id`` names what was answered (artwork id, revision, content hash, model
    version; see :meth:`make_id`), so consumers drop by it the duplicates that at-least-once
    delivery may bring, and two records with one id always carry the same suggestions.
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    event_type: Literal["tag_suggestions.published"] = "tag_suggestions.published"
    suggestion_id: str
    artwork_id: str
    revision: int
    content_hash: str = Field(description="sha256 of the model input text built from the metadata")
    model_version: str
    source_event_id: str | None = None
    produced_at: datetime = Field(default_factory=utc_now)
    suggestions: list[TagSuggestion]

    @staticmethod
    def make_id(artwork_id: str, revision: int, content_hash: str, model_version: str) -> str:
        """``<artwork id>:<revision>:<first 16 hex digits of the content hash>:<model version>``.

        The content is part of the id because one revision can arrive with two contents (a
        created and an updated event, or a re-sent export): each answer is its own record.
        """
        return f"{artwork_id}:{revision}:{content_hash[:16]}:{model_version}"


class FeedbackActor(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["curator", "public"]
    id: str = Field(min_length=1)


class TagFeedbackGiven(_Produced):
    """A person accepted, rejected or added a tag. Topic ``tags.feedback.v1``, key = artwork id."""

    schema_version: Literal[1] = SCHEMA_VERSION
    event_type: Literal["tag_feedback.given"] = "tag_feedback.given"
    event_id: str = Field(default_factory=new_event_id)
    occurred_at: datetime = Field(default_factory=utc_now)
    artwork_id: str = Field(min_length=1)
    tag_id: str = Field(min_length=1)
    tag_label: str | None = None
    action: Literal["accepted", "rejected", "added"]
    actor: FeedbackActor
    suggestion_id: str | None = Field(None, description="The suggestions event this answers, if any")
    model_version: str | None = None
    comment: str | None = Field(None, max_length=2000)


class DeadLetter(_Produced):
    """A message that could not be processed, kept whole. Topic ``arttag.deadletter.v1``."""

    schema_version: Literal[1] = SCHEMA_VERSION
    event_type: Literal["dead_letter"] = "dead_letter"
    original_value_b64: str | None
    original_key_b64: str | None = None
    topic: str
    partition: int
    offset: int
    error: str
    error_type: str
    consumer: str
    failed_at: datetime = Field(default_factory=utc_now)

    @staticmethod
    def encode_bytes(raw: bytes | None) -> str | None:
        return None if raw is None else base64.b64encode(raw).decode("ascii")

    def original_value(self) -> bytes | None:
        return None if self.original_value_b64 is None else base64.b64decode(self.original_value_b64)

    def original_key(self) -> bytes | None:
        return None if self.original_key_b64 is None else base64.b64decode(self.original_key_b64)


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming every failing field, e.g. ``artwork.title: Field required``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def decode_event(raw: bytes | None, model: Any) -> Any:
    """Bytes to a validated event; raises EventDecodeError saying what is wrong and where.

    ``model`` is a pydantic model class or an annotated union such as ArtworkEvent.
    """
    from pydantic import TypeAdapter

    if raw is None:
        raise EventDecodeError("empty message (no value)", reason="empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EventDecodeError(f"message is not UTF-8: {exc}", reason="undecodable") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EventDecodeError(f"message is not JSON: {exc}", reason="invalid_json") from exc
    if not isinstance(data, dict):
        raise EventDecodeError("message is JSON but not an object", reason="schema")
    try:
        return TypeAdapter(model).validate_python(data)
    except ValidationError as exc:
        fields = [".".join(str(p) for p in e["loc"]) for e in exc.errors()]
        raise EventDecodeError(
            f"schema violation: {describe_validation_error(exc)}", reason="schema", fields=fields
        ) from exc


def decode_artwork_event(raw: bytes | None) -> ArtworkCreated | ArtworkUpdated:
    return decode_event(raw, ArtworkEvent)


def encode_event(event: BaseModel) -> bytes:
    return event.model_dump_json().encode("utf-8")


SCHEMA_MODELS: dict[str, Any] = {
    "artwork-created.v1": ArtworkCreated,
    "artwork-updated.v1": ArtworkUpdated,
    "tag-suggestions-published.v1": TagSuggestionsPublished,
    "tag-feedback-given.v1": TagFeedbackGiven,
    "dead-letter.v1": DeadLetter,
}
