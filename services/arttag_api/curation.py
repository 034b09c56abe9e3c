"""The curation service layer: plain functions the JSON routes and the review page both call.

Where things come from: decisions, votes and contributors from the curation database
(:mod:`arttag.curation.store`, kept by ``arttag curate``); artwork metadata from the catalogue
follower (:mod:`arttag.kafka.artworks`); suggestions from the latest view. Feedback goes out
through the publisher to ``tags.feedback.v1`` and comes back as decisions once ``arttag
curate`` folded it.

Example::

    card = artwork_card(services, "T01234", viewer=None)
    queue = review_queue(services, band="medium", limit=20)
    event_id = publish_feedback(services, publisher, actor=FeedbackActor(kind="public", id="pub-..."),
                                artwork_id="T01234", tag_id="1050", action="accepted")
"""

from __future__ import annotations

import logging
import math
import secrets
from typing import Literal

from arttag.curation.store import ACCEPTED, REJECTED, TagRow, VoteRow
from arttag.events import ArtworkMetadata, FeedbackActor, TagFeedbackGiven, TagSuggestion
from fastapi import HTTPException
from pydantic import BaseModel, Field

from arttag_api.auth import hash_api_key
from arttag_api.deps import Services
from arttag_api.models import ReviewItemPublic, ReviewQueuePublic, TagStatePublic, VotePublic
from arttag_api.publisher import FeedbackPublisher, PublishError

log = logging.getLogger(__name__)

Actor = FeedbackActor
Band = Literal["high", "medium", "low"]

HIGH, LOW = 0.7, 0.3
"""Band edges on a suggestion's confidence: high >= 0.7, medium 0.3 to 0.7, low < 0.3."""

QUEUE_RULE = ("Artworks with an undecided tag one public vote from consensus come first (most such tags "
              "first), then those whose undecided suggestions in the uncertain band (confidence 0.3 to 0.7) "
              "have the highest summed confidence, then by artwork id.")


def band_of(confidence: float) -> Band:
    if confidence >= HIGH:
        return "high"
    return "medium" if confidence >= LOW else "low"


class TagCard(TagStatePublic):
    """A tag on the review card: its curation state, and the suggestion when the model made one."""

    suggestion: TagSuggestion | None = Field(None, description="The latest suggestion of this tag, if any")
    assigned: bool = Field(False, description="The catalogue record already carries the tag")


class ArtworkCard(BaseModel):
    """What a reviewer sees of one artwork: metadata, the latest suggestions, every tag's state."""

    artwork_id: str
    revision: int | None = None
    artwork: ArtworkMetadata | None = Field(None, description="Null while the catalogue follower has not seen it")
    suggestion_id: str | None = None
    model_version: str | None = None
    tags: list[TagCard] = Field(description="Suggested tags in rank order, then other tags with feedback")


def _state(row: TagRow, votes: list[VoteRow], label: str | None, group: str | None,
           viewer: Actor | None) -> dict:
    show = viewer is not None and viewer.kind == "curator"
    return {
        "tag_id": row.tag_id, "label": label, "group": group, "status": row.status,
        "decided_by": row.decided_by, "curator_id": row.curator_id, "decided_at": row.decided_at,
        "suggestion_id": row.suggestion_id, "model_version": row.model_version,
        "votes_for": row.votes_for, "votes_against": row.votes_against,
        "votes": [VotePublic(contributor_id=v.contributor_id, vote=v.vote, at=v.at) for v in votes] if show else [],
    }


def _group(services: Services, tag_id: str) -> str | None:
    vocabulary = services.vocabulary
    tag = vocabulary.get(tag_id) if vocabulary is not None else None
    return tag.group if tag is not None else None


def _label(services: Services, tag_id: str) -> str | None:
    vocabulary = services.vocabulary
    tag = vocabulary.get(tag_id) if vocabulary is not None else None
    return tag.label if tag is not None else None


def tag_states(services: Services, artwork_id: str, *, viewer: Actor | None) -> list[TagStatePublic]:
    """Every tag of the artwork with feedback, by tag id; contributor ids only to curators."""
    store = services.curation_store()
    votes: dict[str, list[VoteRow]] = {}
    for vote in store.votes(artwork_id):
        votes.setdefault(vote.tag_id, []).append(vote)
    return [TagStatePublic(**_state(row, votes.get(row.tag_id, []), row.label or _label(services, row.tag_id),
                                    _group(services, row.tag_id), viewer))
            for row in store.tags(artwork_id)]


def artwork_known(services: Services, artwork_id: str) -> bool:
    return ((services.catalogue is not None and services.catalogue.get(artwork_id) is not None)
            or (services.view is not None and services.view.get(artwork_id) is not None))


def artwork_card(services: Services, artwork_id: str, *, viewer: Actor | None) -> ArtworkCard | None:
    """The artwork's card; None when neither the catalogue, the suggestions nor the feedback know it."""
    record = services.catalogue.get(artwork_id) if services.catalogue is not None else None
    latest = services.view.get(artwork_id) if services.view is not None else None
    states = {s.tag_id: s for s in tag_states(services, artwork_id, viewer=viewer)}
    if record is None and latest is None and not states:
        return None
    assigned = {t.id for t in record.artwork.tags} if record is not None else set()
    tags: list[TagCard] = []
    for suggestion in latest.suggestions if latest is not None else []:
        state = states.pop(suggestion.tag_id, None)
        base = state.model_dump() if state is not None else {
            "tag_id": suggestion.tag_id, "label": suggestion.label, "group": _group(services, suggestion.tag_id),
            "status": "proposed"}
        base["label"] = base["label"] or suggestion.label
        tags.append(TagCard(**base, suggestion=suggestion,
                            assigned=suggestion.already_assigned or suggestion.tag_id in assigned))
    for state in states.values():
        tags.append(TagCard(**state.model_dump(), assigned=state.tag_id in assigned))
    return ArtworkCard(
        artwork_id=artwork_id,
        revision=record.revision if record is not None else None,
        artwork=record.artwork if record is not None else None,
        suggestion_id=latest.suggestion_id if latest is not None else None,
        model_version=latest.model_version if latest is not None else None,
        tags=tags,
    )


def review_queue(services: Services, *, group: str | None = None, band: Band | None = None,
                 model_version: str | None = None, tag_group: str | None = None, limit: int = 20,
                 offset: int = 0) -> ReviewQueuePublic:
    """Artworks with undecided suggestions, ordered by :data:`QUEUE_RULE` (docs/curation.md says why).

    Undecided: suggested in the latest view, not already assigned, neither accepted nor
    rejected. ``group``: the artwork's ``group_title`` (a sketchbook, say), exactly; ``band``:
    only suggestions whose confidence is in it count; ``model_version``: only artworks whose
    latest suggestions that model made; ``tag_group``: only suggestions of tags in that
    vocabulary group count.
    """
    if services.view is None:
        raise HTTPException(503, "the review queue needs the latest-suggestions view (ARTTAG_LATEST_VIEW=false)")
    statuses = services.curation_store().tag_statuses()
    items: list[ReviewItemPublic] = []
    for latest in services.view.values():
        if model_version is not None and latest.model_version != model_version:
            continue
        metadata = services.catalogue.metadata(latest.artwork_id) if services.catalogue is not None else None
        if group is not None and (metadata is None or metadata.group_title != group):
            continue
        undecided: list[TagSuggestion] = []
        near = 0
        for s in latest.suggestions:
            status, near_consensus = statuses.get((latest.artwork_id, s.tag_id), (None, False))
            if s.already_assigned or status in (ACCEPTED, REJECTED):
                continue
            if band is not None and band_of(s.confidence) != band:
                continue
            if tag_group is not None and s.group != tag_group:
                continue
            undecided.append(s)
            near += near_consensus
        if not undecided:
            continue
        items.append(ReviewItemPublic(
            artwork_id=latest.artwork_id,
            title=metadata.title if metadata is not None else None,
            group_title=metadata.group_title if metadata is not None else None,
            model_version=latest.model_version,
            undecided=len(undecided),
            top_confidence=max(s.confidence for s in undecided),
            near_consensus=near,
            priority=math.fsum(s.confidence for s in undecided if band_of(s.confidence) == "medium"),
        ))
    items.sort(key=lambda i: (-i.near_consensus, -i.priority, i.artwork_id))
    return ReviewQueuePublic(items=items[offset:offset + limit], total=len(items), rule=QUEUE_RULE)


def publish_feedback(services: Services, publisher: FeedbackPublisher, *, actor: Actor, artwork_id: str,
                     tag_id: str, action: Literal["accepted", "rejected", "added"],
                     suggestion_id: str | None = None, model_version: str | None = None,
                     tag_label: str | None = None, comment: str | None = None) -> str:
    """Publish one TagFeedbackGiven and return its event id once the broker confirmed it.

    A curator may accept, reject or add; a public contributor may only vote on a tag
    (accepted or rejected): a public "added" is refused with 403.
    """
    if actor.kind == "public" and action == "added":
        raise HTTPException(403, "public contributors vote on suggested tags; only curators add tags")
    event = TagFeedbackGiven(
        artwork_id=artwork_id, tag_id=tag_id, tag_label=tag_label or _label(services, tag_id), action=action,
        actor=actor, suggestion_id=suggestion_id, model_version=model_version, comment=comment,
    )
    try:
        publisher.publish(event)
    except PublishError as exc:
        # the broker's words (topic, error code) are for the log; the client learns what to do
        log.error("feedback %s for artwork %s not published: %s", event.event_id, artwork_id, exc)
        raise HTTPException(503, "the feedback could not be confirmed as stored; send it again later",
                            headers={"Retry-After": "5"}) from exc
    services.metrics.feedback_published.labels(action).inc()
    return event.event_id


def register_contributor(services: Services) -> tuple[str, str]:
    """A new public contributor: ``(contributor_id, token)``; only the token's sha256 is kept."""
    if not services.settings.public_votes:
        raise HTTPException(404, "public votes are turned off here (ARTTAG_PUBLIC_VOTES=false)")
    token = secrets.token_urlsafe(32)
    return services.curation_store().register_contributor(hash_api_key(token)), token
