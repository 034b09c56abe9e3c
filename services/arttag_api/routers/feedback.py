"""``POST /v1/feedback``: a curator accepts, rejects or adds a tag; published as TagFeedbackGiven.

With a curator's key the curator of the key is the actor; an integration key names the actor
in the body."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException
from starlette.concurrency import run_in_threadpool

from arttag_api import curation
from arttag_api.auth import CredentialDep
from arttag_api.deps import PublisherDep, ServicesDep
from arttag_api.models import FeedbackCreate, FeedbackPublic
from arttag_api.problems import problem_responses

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/feedback", tags=["feedback"])


@router.post("", status_code=202, response_model=FeedbackPublic,
             summary="Give feedback on a tag of an artwork",
             responses=problem_responses(400, 401, 403, 413, 422, 429, 503))
async def give_feedback(body: FeedbackCreate, credential: CredentialDep, services: ServicesDep,
                        publisher: PublisherDep) -> FeedbackPublic:
    actor = credential.actor or body.actor
    if actor is None:
        # the body is valid as such; this key may only publish on behalf of an actor it names
        raise HTTPException(403, "an integration key acts for somebody: name them in body.actor "
                            "(a curator's own key needs no actor)")
    # blocks until the broker confirms (acks=all), so off the event loop
    event_id = await run_in_threadpool(
        lambda: curation.publish_feedback(
            services, publisher, actor=actor, artwork_id=body.artwork_id, tag_id=body.tag_id,
            action=body.action, suggestion_id=body.suggestion_id, model_version=body.model_version,
            tag_label=body.tag_label, comment=body.comment,
        ))
    return FeedbackPublic(event_id=event_id, topic=getattr(publisher, "topic", "tags.feedback.v1"))
