"""Curation over HTTP: an artwork's record and decisions, the review queue, public votes and
contributor registration. Thin: the logic is in :mod:`arttag_api.curation`."""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter, HTTPException, Path, Query

from arttag_api import curation
from arttag_api.auth import ContributorDep, OptionalCredentialDep
from arttag_api.deps import PublisherDep, ServicesDep
from arttag_api.models import (
    ArtworkDecisionsPublic,
    ArtworkPublic,
    ContributorPublic,
    FeedbackPublic,
    ReviewQueuePublic,
    VoteCreate,
)
from arttag_api.problems import problem_responses

log = logging.getLogger(__name__)

# reads: public unless ARTTAG_PUBLIC_READS=false (create_app adds the key check)
reads = APIRouter(tags=["curation"])
# writes: each route checks its own credential
writes = APIRouter(tags=["curation"])

ArtworkId = Path(min_length=1, max_length=200)


@reads.get("/v1/artworks/{artwork_id}", response_model=ArtworkPublic,
           summary="An artwork's newest catalogue record (from the artwork topics)",
           responses=problem_responses(401, 403, 404, 422, 429, 503))
def get_artwork(services: ServicesDep, artwork_id: str = ArtworkId) -> ArtworkPublic:
    if services.catalogue is None:
        raise HTTPException(503, "the catalogue is not followed here (ARTTAG_CATALOGUE_VIEW=false)")
    record = services.catalogue.get(artwork_id)
    if record is None:
        detail = f"artwork {artwork_id!r} is not in the catalogue"
        if not services.catalogue.caught_up.is_set():
            detail += " (the catalogue is still reading the artwork topics)"
        raise HTTPException(404, detail)
    return ArtworkPublic(artwork_id=artwork_id, revision=record.revision, artwork=record.artwork)


@reads.get("/v1/artworks/{artwork_id}/decisions", response_model=ArtworkDecisionsPublic,
           summary="Each tag's curation state: accepted, rejected or proposed, who decided, the votes",
           responses=problem_responses(401, 403, 404, 422, 429, 503))
def get_decisions(services: ServicesDep, credential: OptionalCredentialDep,
                  artwork_id: str = ArtworkId) -> ArtworkDecisionsPublic:
    viewer = credential.actor if credential is not None else None
    tags = curation.tag_states(services, artwork_id, viewer=viewer)
    if not tags and not curation.artwork_known(services, artwork_id):
        raise HTTPException(404, f"nothing is known of artwork {artwork_id!r}: no feedback, "
                            "no catalogue record, no suggestions")
    return ArtworkDecisionsPublic(artwork_id=artwork_id, tags=tags)


@reads.get("/v1/review/queue", response_model=ReviewQueuePublic,
           summary="Artworks with undecided suggestions, the most useful to review first",
           responses=problem_responses(401, 403, 422, 429, 503))
def get_review_queue(
    services: ServicesDep,
    group: str | None = Query(None, min_length=1, max_length=500, description="The artwork's group_title, exactly"),
    band: Literal["high", "medium", "low"] | None = Query(
        None, description="Only suggestions with confidence high (>= 0.7), medium (0.3-0.7) or low (< 0.3)"),
    model_version: str | None = Query(None, min_length=1, max_length=200),
    tag_group: str | None = Query(None, min_length=1, max_length=500,
                                  description="Only suggestions of tags in this vocabulary group count"),
    limit: int = Query(20, ge=1, le=100),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> ReviewQueuePublic:
    return curation.review_queue(services, group=group, band=band, model_version=model_version, tag_group=tag_group,
                                 limit=limit, offset=offset)


@writes.post("/v1/votes", status_code=202, response_model=FeedbackPublic,
             summary="A public contributor's vote on a suggested tag (X-Contributor-Token)",
             responses=problem_responses(400, 401, 403, 404, 413, 422, 429, 503))
def post_vote(body: VoteCreate, actor: ContributorDep, services: ServicesDep,
              publisher: PublisherDep) -> FeedbackPublic:
    event_id = curation.publish_feedback(
        services, publisher, actor=actor, artwork_id=body.artwork_id, tag_id=body.tag_id,
        action="accepted" if body.vote == "accept" else "rejected",
        suggestion_id=body.suggestion_id, model_version=body.model_version,
    )
    return FeedbackPublic(event_id=event_id, topic=getattr(publisher, "topic", "tags.feedback.v1"))


@writes.post("/v1/contributors", status_code=201, response_model=ContributorPublic,
             summary="Register as a public contributor: a contributor id and the token to vote with",
             responses=problem_responses(404, 429, 503))
def post_contributor(services: ServicesDep) -> ContributorPublic:
    contributor_id, token = curation.register_contributor(services)
    log.info("public contributor %s registered", contributor_id)
    return ContributorPublic(contributor_id=contributor_id, token=token)
