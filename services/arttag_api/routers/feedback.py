"""``POST /v1/feedback``: a curator accepts, rejects or adds a tag; published as TagFeedbackGiven."""

from __future__ import annotations

import logging

from arttag.events import TagFeedbackGiven
from fastapi import APIRouter, HTTPException
from starlette.concurrency import run_in_threadpool

from arttag_api.auth import ApiKeyRequired
from arttag_api.deps import MetricsDep, PublisherDep, ServicesDep
from arttag_api.models import FeedbackCreate, FeedbackPublic
from arttag_api.problems import problem_responses
from arttag_api.publisher import PublishError

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/feedback", tags=["feedback"])


@router.post("", status_code=202, response_model=FeedbackPublic, dependencies=[ApiKeyRequired],
             summary="Give feedback on a tag of an artwork",
             responses=problem_responses(400, 401, 403, 413, 422, 429, 503))
async def give_feedback(body: FeedbackCreate, services: ServicesDep, publisher: PublisherDep,
                        metrics: MetricsDep) -> FeedbackPublic:
    label = body.tag_label
    if label is None and services.vocabulary is not None:
        tag = services.vocabulary.get(body.tag_id)
        label = tag.label if tag else None
    event = TagFeedbackGiven(
        artwork_id=body.artwork_id, tag_id=body.tag_id, tag_label=label, action=body.action,
        actor=body.actor, suggestion_id=body.suggestion_id, model_version=body.model_version,
        comment=body.comment,
    )
    try:
        # blocks until the broker confirms (acks=all), so off the event loop
        await run_in_threadpool(publisher.publish, event)
    except PublishError as exc:
        # the broker's words (topic, error code) are for the log; the client learns what to do
        log.error("feedback %s for artwork %s not published: %s", event.event_id, body.artwork_id, exc)
        raise HTTPException(503, "the feedback could not be confirmed as stored; send it again later",
                            headers={"Retry-After": "5"}) from exc
    metrics.feedback_published.labels(body.action).inc()
    return FeedbackPublic(event_id=event.event_id, topic=getattr(publisher, "topic", "tags.feedback.v1"))
