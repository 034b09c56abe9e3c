"""``GET /v1/artworks/{artwork_id}/suggestions``: what the stream last published for an artwork."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, Path

from arttag_api.deps import ServicesDep, ViewDep
from arttag_api.models import LatestSuggestionsPublic
from arttag_api.problems import problem_responses

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/artworks", tags=["artworks"])

# The follower's own error names topics and broker codes (docs/api-safety.md: nothing internal
# in error bodies); it is in the server log, and /readyz gives the same summary.
VIEW_IN_ERROR = ("the latest suggestions cannot be read at the moment: the view cannot read its topic "
                 "(the cause is in the server log); try again later")


@router.get("/{artwork_id}/suggestions", response_model=LatestSuggestionsPublic,
            summary="Latest suggestions the stream published for an artwork",
            responses=problem_responses(401, 403, 404, 422, 429, 503))
async def latest_suggestions(
    view: ViewDep, services: ServicesDep, artwork_id: str = Path(min_length=1, max_length=200),
) -> LatestSuggestionsPublic:
    event = view.get(artwork_id)
    follower = services.follower
    in_error = follower is not None and follower.error is not None
    # A view in error that never caught up may hold an older revision, or nothing, for any
    # artwork: a 404 or that revision would be an answer the topic does not give.
    if in_error and (event is None or not view.caught_up.is_set()):
        raise HTTPException(503, VIEW_IN_ERROR, headers={"Retry-After": "5"})
    if event is None:
        detail = f"no suggestions published for artwork {artwork_id!r}"
        if not view.caught_up.is_set():
            detail += " (the view is still reading the topic)"
        raise HTTPException(404, detail)
    return LatestSuggestionsPublic.model_validate(event.model_dump())
