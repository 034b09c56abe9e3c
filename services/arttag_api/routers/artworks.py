"""``GET /v1/artworks/{artwork_id}/suggestions``: what the stream last published for an artwork."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, Path

from arttag_api.deps import ViewDep
from arttag_api.models import LatestSuggestionsPublic
from arttag_api.problems import problem_responses

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/artworks", tags=["artworks"])


@router.get("/{artwork_id}/suggestions", response_model=LatestSuggestionsPublic,
            summary="Latest suggestions the stream published for an artwork",
            responses=problem_responses(401, 403, 404, 422, 429, 503))
async def latest_suggestions(
    view: ViewDep, artwork_id: str = Path(min_length=1, max_length=200),
) -> LatestSuggestionsPublic:
    event = view.get(artwork_id)
    if event is None:
        detail = f"no suggestions published for artwork {artwork_id!r}"
        if not view.caught_up.is_set():
            detail += " (the view is still reading the topic)"
        raise HTTPException(404, detail)
    return LatestSuggestionsPublic.model_validate(event.model_dump())
