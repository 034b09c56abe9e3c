"""``POST /v1/suggest`` and ``/v1/suggest/batch``: ranked, explained tags for artwork metadata."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import NoReturn

from arttag.events import ArtworkMetadata, TagSuggestion
from arttag.model.tagger import SuggestOptions
from fastapi import APIRouter, HTTPException

from arttag_api.batcher import ModelFuture, SuggestBatcher, TaggerBusy
from arttag_api.deps import BatcherDep, MetricsDep, SettingsDep, TaggerDep
from arttag_api.limits import check_suggest_request
from arttag_api.models import (
    BatchItemPublic,
    SuggestBatchCreate,
    SuggestBatchPublic,
    SuggestCreate,
    SuggestionsPublic,
)
from arttag_api.problems import problem_responses

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/suggest", tags=["suggest"])


def _effective(options: SuggestOptions, default_limit: int) -> SuggestOptions:
    # the service's configured limit applies unless the client chose one
    if "limit" in options.model_fields_set:
        return options
    return options.model_copy(update={"limit": default_limit})


def _submit(batcher: SuggestBatcher, artworks: Sequence[ArtworkMetadata],
            options: SuggestOptions) -> ModelFuture:
    """The batcher's future, or 503 with ``Retry-After`` when its queue is full."""
    try:
        return batcher.submit(artworks, options)
    except TaggerBusy as exc:
        _shed(exc)


async def _result(future: ModelFuture) -> list[list[TagSuggestion]]:
    """The suggestions, or 503 with ``Retry-After`` when the request waited too long in the queue."""
    try:
        return await asyncio.wrap_future(future)
    except TaggerBusy as exc:
        _shed(exc)


def _shed(exc: TaggerBusy) -> NoReturn:
    log.info("suggest request shed: %s", exc)
    raise HTTPException(503, str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from exc


@router.post("", response_model=SuggestionsPublic, summary="Suggest tags for one artwork",
             responses=problem_responses(400, 401, 403, 413, 422, 429, 503))
async def suggest(body: SuggestCreate, settings: SettingsDep, tagger: TaggerDep,
                  batcher: BatcherDep, metrics: MetricsDep) -> SuggestionsPublic:
    check_suggest_request([body.artwork], settings, ("body", "artwork"))
    options = _effective(body.options, settings.suggestion_limit)
    future = _submit(batcher, [body.artwork], options)
    [suggestions] = await _result(future)
    metrics.suggestions_served.inc(len(suggestions))
    # the model that answered, which a hot reload may have swapped in since the request came
    return SuggestionsPublic(model_version=future.model_version or tagger.model_version, suggestions=suggestions)


@router.post("/batch", response_model=SuggestBatchPublic, summary="Suggest tags for several artworks",
             responses=problem_responses(400, 401, 403, 413, 422, 429, 503))
async def suggest_batch(body: SuggestBatchCreate, settings: SettingsDep, tagger: TaggerDep,
                        batcher: BatcherDep, metrics: MetricsDep) -> SuggestBatchPublic:
    check_suggest_request([item.artwork for item in body.artworks], settings, ("body", "artworks"))
    options = _effective(body.options, settings.suggestion_limit)
    # one job, hence one tagger call: the encoder embeds the whole batch at once
    future = _submit(batcher, [item.artwork for item in body.artworks], options)
    results = await _result(future)
    metrics.suggestions_served.inc(sum(len(r) for r in results))
    return SuggestBatchPublic(
        model_version=future.model_version or tagger.model_version,
        results=[BatchItemPublic(id=item.id, suggestions=r) for item, r in zip(body.artworks, results)],
    )
