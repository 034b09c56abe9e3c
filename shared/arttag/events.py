"""Event contracts: frozen, versioned pydantic models for every message arttag reads or writes.

What we consume is tolerant (unknown fields are ignored, so the catalogue can
add fields without breaking us); what we produce is strict (``extra="forbid"``), so
no producer writes an undeclared field by mistake. Where arttag reads back what it
produced, it decodes with ``decode_event(..., ignore_unknown=True)``: a record from a
newer writer of the same version may carry a new optional field.
JSON Schemas for all of them are generated into ``schemas/`` by
``arttag schemas export``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import uuid
import weakref
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Annotated, Any, Literal, TypeVar, Union

import pydantic_core
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from arttag import limits
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

    id: str = Field(max_length=limits.MAX_ID_CHARS)
    label: str | None = Field(None, max_length=limits.MAX_SHORT_TEXT_CHARS,
                              description="Tag label, e.g. 'harbour'")
    group: str | None = Field(None, max_length=limits.MAX_SHORT_TEXT_CHARS,
                              description="Level-1 group, e.g. 'seascapes and coasts'")

    _coerce_id = field_validator("id", mode="before")(_as_str_id)


_Short = Annotated[str, Field(max_length=limits.MAX_SHORT_TEXT_CHARS)]
_Year = Annotated[int, Field(ge=limits.YEAR_MIN, le=limits.YEAR_MAX)]


class ArtworkMetadata(_Consumed):
    """Catalogue metadata of one artwork, as in Tate's collection data.

    Every field is bounded (:mod:`arttag.limits`), and so is all the text
    together, so no record can make the model or an output arbitrarily large.
    """

    title: str = Field(min_length=1, max_length=limits.MAX_SHORT_TEXT_CHARS)
    artists: list[_Short] = Field(default_factory=list, max_length=limits.MAX_LIST_ITEMS)
    date: _Short | None = None
    year: _Year | None = None
    medium: _Short | None = None
    classification: _Short | None = None
    dimensions: _Short | None = None
    group_title: _Short | None = Field(None, description="e.g. the sketchbook a drawing belongs to")
    inscription: str | None = Field(None, max_length=limits.MAX_LONG_TEXT_CHARS)
    movements: list[_Short] = Field(default_factory=list, max_length=limits.MAX_LIST_ITEMS)
    description: str | None = Field(None, max_length=limits.MAX_LONG_TEXT_CHARS)
    acquisition_year: _Year | None = None
    accession_number: str | None = Field(
        None, max_length=limits.MAX_ACCESSION_CHARS,
        description="The museum's accession number, e.g. D12345; neighbouring numbers were often catalogued together",
    )
    tags: list[AssignedTag] = Field(default_factory=list, max_length=limits.MAX_TAGS)

    @model_validator(mode="after")
    def _bounded_as_a_whole(self) -> ArtworkMetadata:
        # Checked here as well as per field: subclasses (the API's strict request models)
        # redefine ``tags`` and the tag id, and inherit only this validator.
        if len(self.tags) > limits.MAX_TAGS:
            raise ValueError(f"at most {limits.MAX_TAGS} tags")
        if any(len(t.id) > limits.MAX_ID_CHARS for t in self.tags):
            raise ValueError(f"tag ids are at most {limits.MAX_ID_CHARS} characters")
        total = text_chars(self)
        if total > limits.MAX_TEXT_CHARS:
            raise ValueError(
                f"the artwork's text is {total} characters in all; at most {limits.MAX_TEXT_CHARS}"
            )
        return self


def text_chars(artwork: ArtworkMetadata) -> int:
    """Characters of every string of the artwork: fields, list items, assigned tags."""
    total = 0
    for value in artwork.__dict__.values():
        if isinstance(value, str):
            total += len(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, str):
                    total += len(item)
                elif isinstance(item, AssignedTag):
                    total += len(item.id) + len(item.label or "") + len(item.group or "")
    return total


class _ArtworkEventBase(_Consumed):
    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: str = Field(default_factory=new_event_id, max_length=limits.MAX_ID_CHARS)
    occurred_at: datetime = Field(default_factory=utc_now)
    source: str = Field("catalogue", max_length=limits.MAX_ID_CHARS,
                        description="System that emitted the event")
    artwork_id: str = Field(min_length=1, max_length=limits.MAX_ID_CHARS,
                            description="Also the Kafka message key")
    revision: int = Field(ge=0, le=limits.MAX_REVISION, description="Catalogue revision; higher is newer")
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
    # Written only when true, so the many trained neighbours' records stay as they were.
    from_decision: bool = Field(
        False, exclude_if=lambda v: not v,
        description="The neighbour was learned online: its tags come from an accepted curation "
        "decision (tags.decisions.v1), not from the bundle's training data",
    )


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
    auto_apply: bool = Field(
        False, description="Confidence at or above the bundle's threshold for the precision the "
        "worker's auto_apply_precision setting names: safe to apply without review (false when unset)")


class TagSuggestionsPublished(_Produced):
    """Ranked tag suggestions for one artwork revision. Topics ``tags.suggestions.v1`` and
    ``tags.suggestions.latest.v1`` (compacted), key = artwork id.

    ``suggestion_id`` names what was asked and what was answered (artwork id, revision,
    content hash, model version, and a digest of the answer; see :meth:`make_id`), so
    consumers drop by it the duplicates that at-least-once delivery may bring, and two records
    with one id always carry the same suggestions.
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
    def make_id(artwork_id: str, revision: int, content_hash: str, model_version: str,
                suggestions: Sequence[TagSuggestion]) -> str:
        """``<artwork id>:<revision>:<first 16 hex digits of the content hash>:<model version>:<answer digest>``.

        The content is part of the id because one revision can arrive with two contents (a
        created and an updated event, or a re-sent export): each answer is its own record. The
        answer is part of it (:func:`answer_digest`) because one question can get two answers
        under one model version: online learning from curators' decisions changes what the
        worker suggests between a first delivery and a redelivery of the same event.
        """
        return (f"{artwork_id}:{revision}:{content_hash[:16]}:{model_version}:"
                f"{answer_digest(suggestions)}")


def answer_digest(suggestions: Sequence[TagSuggestion]) -> str:
    """First 8 hex digits of sha256 over an answer as a cataloguer reads it: the tag ids in
    order, each with its confidence to two decimals and its auto-apply mark.

    Rounded, because two computations of one answer may differ in the last digits of a float
    (the batch an artwork is encoded in changes the padding); the evidence's weights are left
    out for the same reason.
    """
    text = "\n".join(f"{s.tag_id}\t{s.confidence:.2f}\t{int(s.auto_apply)}" for s in suggestions)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


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


class TagDecision(_Produced):
    """One decided tag of an artwork, and why: a curator's word or the public's consensus."""

    tag_id: str
    tag_label: str | None = None
    decided_by: Literal["curator", "consensus"]
    curator_id: str | None = Field(None, description="The curator whose feedback decided (decided_by curator)")
    contributors: list[str] = Field(
        default_factory=list,
        description="Public contributors who voted this way, sorted (decided_by consensus)",
    )
    votes_for: int = Field(ge=0, description="Distinct public contributors who voted this way")
    votes_against: int = Field(ge=0, description="Distinct public contributors who voted the other way")
    event_id: str = Field(description="The feedback event that decided: the curator's, or the newest agreeing vote")
    decided_at: datetime = Field(description="occurred_at of that feedback event")
    suggestion_id: str | None = Field(None, description="The suggestions event the deciding feedback answered")
    model_version: str | None = None


class TagDecisionsChanged(_Produced):
    """An artwork's curated tags changed. Topic ``tags.decisions.v1`` (compacted), key = artwork id.

    A projection of ``tags.feedback.v1`` by ``arttag curate``: replaying the feedback topic
    yields the same records, whatever the order partitions are read in. Nothing in it comes
    from a clock (times are those of the deciding feedback), and ``decisions_id`` is a digest
    of the content, so two records with one id say the same. A record is published only when
    the decisions (or the proposed tags) change, not for every vote.
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    event_type: Literal["tag_decisions.changed"] = "tag_decisions.changed"
    decisions_id: str = Field(description="sha256 (first 32 hex digits) of the decisions, for deduplication")
    artwork_id: str
    accepted: list[TagDecision] = Field(description="Accepted tags, sorted by tag id")
    rejected: list[TagDecision] = Field(description="Rejected tags, sorted by tag id")
    proposed: list[str] = Field(description="Tag ids with feedback but no decision yet, sorted")


class DeadLetter(_Produced):
    """A message that could not be processed. Topic ``arttag.deadletter.v1``.

    The original key and value are kept whole when the dead letter stays within
    the worker's record size (``ARTTAG_MAX_RECORD_BYTES``); otherwise only their
    first bytes are kept (``truncated``), with their length and sha256, and
    ``topic``/``partition``/``offset`` say where to fetch the original.
    """

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
    truncated: bool = Field(
        False, description="original_value_b64 and original_key_b64 hold only the first bytes of the original"
    )
    original_value_length: int | None = Field(None, description="Bytes of the original value")
    original_value_sha256: str | None = Field(None, description="sha256 (hex) of the original value")
    original_key_length: int | None = Field(None, description="Bytes of the original key")
    original_key_sha256: str | None = Field(None, description="sha256 (hex) of the original key")
    attempts: int | None = Field(
        None, description="How many times processing of the message began (reason repeated-failure)"
    )

    @staticmethod
    def encode_bytes(raw: bytes | None) -> str | None:
        return None if raw is None else base64.b64encode(raw).decode("ascii")

    @classmethod
    def for_message(
        cls,
        value: bytes | None,
        key: bytes | None,
        *,
        keep_whole: bool = True,
        prefix_bytes: int = limits.DEAD_LETTER_PREFIX_BYTES,
        **fields: Any,
    ) -> DeadLetter:
        """A dead letter holding ``value`` and ``key`` whole, or their first ``prefix_bytes``;
        lengths and digests are recorded either way."""
        def cut(raw: bytes | None) -> bytes | None:
            return raw if keep_whole or raw is None else raw[:prefix_bytes]

        return cls(
            original_value_b64=cls.encode_bytes(cut(value)),
            original_key_b64=cls.encode_bytes(cut(key)),
            truncated=not keep_whole and any(
                raw is not None and len(raw) > prefix_bytes for raw in (value, key)
            ),
            original_value_length=None if value is None else len(value),
            original_value_sha256=None if value is None else hashlib.sha256(value).hexdigest(),
            original_key_length=None if key is None else len(key),
            original_key_sha256=None if key is None else hashlib.sha256(key).hexdigest(),
            **fields,
        )

    def original_value(self) -> bytes | None:
        """The original value, or its first bytes when ``truncated``."""
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


@functools.lru_cache(maxsize=None)
def _adapter(model: Any) -> TypeAdapter:
    return TypeAdapter(model)


def decode_event(raw: bytes | None, model: Any, *, ignore_unknown: bool = False) -> Any:
    """Bytes to a validated event; raises EventDecodeError saying what is wrong and where.

    ``model`` is a pydantic model class or an annotated union such as ArtworkEvent.
    ``ignore_unknown`` reads a strict (produced) model tolerantly, nested models included:
    every reader of a topic arttag writes passes it, since a new optional field is an allowed
    change within a version (docs/topics.md, schema evolution) and a reader that refused it
    would skip or dead-letter every record of a newer writer.
    Any bytes either decode or raise EventDecodeError: messages over
    ``limits.MAX_EVENT_BYTES`` are refused unread, and the JSON parser bounds
    nesting (``limits.MAX_JSON_DEPTH``) and refuses lone UTF-16 surrogates, which
    no output could encode.
    """
    if raw is None:
        raise EventDecodeError("empty message (no value)", reason="empty")
    if len(raw) > limits.MAX_EVENT_BYTES:
        raise EventDecodeError(
            f"message is {len(raw)} bytes; events are at most {limits.MAX_EVENT_BYTES}",
            reason="too_large",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EventDecodeError(f"message is not UTF-8: {exc}", reason="undecodable") from exc
    try:
        # pydantic-core's parser, not json.loads: that one raises RecursionError on deep
        # nesting, and accepts "\ud800" escapes that later fail to encode.
        data = pydantic_core.from_json(text, cache_strings=False)
    except ValueError as exc:
        raise EventDecodeError(f"message is not JSON: {exc}", reason="invalid_json") from exc
    if not isinstance(data, dict):
        raise EventDecodeError("message is JSON but not an object", reason="schema")
    try:
        return _adapter(model).validate_python(data, extra="ignore" if ignore_unknown else None)
    except ValidationError as exc:
        fields = [".".join(str(p) for p in e["loc"]) for e in exc.errors()]
        raise EventDecodeError(
            f"schema violation: {describe_validation_error(exc)}", reason="schema", fields=fields
        ) from exc


def decode_artwork_event(raw: bytes | None) -> ArtworkCreated | ArtworkUpdated:
    return decode_event(raw, ArtworkEvent)


def encode_event(event: BaseModel) -> bytes:
    """The event as its record value: ``event.model_dump_json()``, UTF-8.

    A :class:`TagSuggestionsPublished` whose suggestions were built by
    :func:`arttag.model.explain.assemble` is written from their JSON forms (:func:`remember_json`)
    by one pass of pydantic-core's encoder: the same bytes, a quarter of the time of serialising
    a few hundred nested models per artwork again.
    """
    if type(event) is TagSuggestionsPublished:
        return _encode_suggestions(event)
    return event.model_dump_json().encode("utf-8")


# -- the explanations' fast path -------------------------------------------------------------
#
# An artwork's suggestions hold a few hundred small models (evidence, contributions), which the
# tagger builds itself from values it already knows valid; validating each costs more than
# computing the explanation. These helpers build them unvalidated and remember their JSON form;
# tests/test_explain_batch.py holds them equal to the validated construction, byte for byte.

_M = TypeVar("_M", bound=BaseModel)
_new = object.__new__
_set = object.__setattr__


def trusted(cls: type[_M], values: dict[str, Any], fields_set: set[str]) -> _M:
    """An instance of ``cls`` holding ``values`` as they are, unvalidated: every field of ``cls``
    (defaults included), each already of its field's type, and ``fields_set`` the fields a
    validated construction would have been given. For values this code built itself only.

    ``fields_set`` is held, not copied, so instances of one kind can share one set: a frozen
    model never changes it, and ``model_copy`` copies it before adding to it."""
    m = _new(cls)
    _set(m, "__dict__", values)
    _set(m, "__pydantic_fields_set__", fields_set)
    _set(m, "__pydantic_extra__", None)
    _set(m, "__pydantic_private__", None)
    return m


_GIVEN_NEIGHBOUR = {"artwork_id", "title", "similarity"}
_GIVEN_DECIDED = _GIVEN_NEIGHBOUR | {"from_decision"}
_GIVEN_TERM = {"field", "term", "weight"}
_GIVEN_TAG_TEXT = {"tag_text", "similarity"}


def neighbour_evidence(artwork_id: str, title: str, similarity: float, from_decision: bool = False) -> NeighbourEvidence:
    """``NeighbourEvidence(artwork_id=..., title=..., similarity=...)`` built by :func:`trusted`."""
    return trusted(NeighbourEvidence, {"kind": "neighbour", "artwork_id": artwork_id, "title": title,
                                       "similarity": similarity, "from_decision": from_decision},
                   _GIVEN_DECIDED if from_decision else _GIVEN_NEIGHBOUR)


def term_evidence(field: str, term: str, weight: float) -> TermEvidence:
    """``TermEvidence(field=..., term=..., weight=...)`` built by :func:`trusted`."""
    return trusted(TermEvidence, {"kind": "term", "field": field, "term": term, "weight": weight}, _GIVEN_TERM)


def tag_text_evidence(tag_text: str, similarity: float) -> TagTextEvidence:
    """``TagTextEvidence(tag_text=..., similarity=...)`` built by :func:`trusted`."""
    return trusted(TagTextEvidence, {"kind": "tag_text", "tag_text": tag_text, "similarity": similarity},
                   _GIVEN_TAG_TEXT)


def evidence_json(evidence: NeighbourEvidence | TermEvidence | TagTextEvidence) -> dict[str, Any]:
    """``evidence.model_dump(mode="json")``: its fields are strings, floats and a bool, so the
    field values themselves, less ``from_decision`` where it is false (written only when true)."""
    values = evidence.__dict__
    if type(evidence) is NeighbourEvidence:
        if values["from_decision"]:
            return values
        return {"kind": "neighbour", "artwork_id": values["artwork_id"], "title": values["title"],
                "similarity": values["similarity"]}
    if type(evidence) is TermEvidence or type(evidence) is TagTextEvidence:
        return values
    return evidence.model_dump(mode="json")


_JSON_FORMS: dict[int, tuple[weakref.ref, dict[str, Any]]] = {}


def remember_json(suggestion: TagSuggestion, form: dict[str, Any]) -> None:
    """Record ``form``, equal to ``suggestion.model_dump(mode="json")``, for :func:`encode_event`.

    Kept beside the model (frozen, so the form stays true) until the model is freed; a copy
    (``model_copy(update=...)``) is a new object without a form and is serialised as usual."""
    key = id(suggestion)
    _JSON_FORMS[key] = (weakref.ref(suggestion, lambda _, key=key: _JSON_FORMS.pop(key, None)), form)


def json_form(suggestion: TagSuggestion) -> dict[str, Any]:
    """``suggestion.model_dump(mode="json")``, from :func:`remember_json` when it holds it."""
    held = _JSON_FORMS.get(id(suggestion))
    if held is not None and held[0]() is suggestion:
        return held[1]
    return suggestion.model_dump(mode="json")


def _encode_suggestions(event: TagSuggestionsPublished) -> bytes:
    head = event.model_dump(mode="json", exclude={"suggestions"})
    data = {name: [json_form(s) for s in event.suggestions] if name == "suggestions" else head[name]
            for name in TagSuggestionsPublished.model_fields}
    # inf_nan_mode: what model_dump_json writes for a non-finite float (ser_json_inf_nan's default)
    return pydantic_core.to_json(data, inf_nan_mode="null")


SCHEMA_MODELS: dict[str, Any] = {
    "artwork-created.v1": ArtworkCreated,
    "artwork-updated.v1": ArtworkUpdated,
    "tag-suggestions-published.v1": TagSuggestionsPublished,
    "tag-feedback-given.v1": TagFeedbackGiven,
    "tag-decisions-changed.v1": TagDecisionsChanged,
    "dead-letter.v1": DeadLetter,
}
