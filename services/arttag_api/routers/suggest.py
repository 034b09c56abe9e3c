"""``POST /v1/suggest`` and ``/v1/suggest/batch``: ranked, explained tags for artwork metadata."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError

from arttag.tagger import SuggestOptions
from arttag_api.deps import BatcherDep, MetricsDep, SettingsDep, TaggerDep
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


@router.post("", response_model=SuggestionsPublic, summary="Suggest tags for one artwork",
             responses=problem_responses(400, 401, 403, 413, 422, 503))
async def suggest(body: SuggestCreate, settings: SettingsDep, tagger: TaggerDep,
                  batcher: BatcherDep, metrics: MetricsDep) -> SuggestionsPublic:
    options = _effective(body.options, settings.suggestion_limit)
    future = batcher.submit([body.artwork], options)
    [suggestions] = await asyncio.wrap_future(future)
    metrics.suggestions_served.inc(len(suggestions))
    # the model that answered, which a hot reload may have swapped in since the request came
    return SuggestionsPublic(model_version=future.model_version or tagger.model_version, suggestions=suggestions)


@router.post("/batch", response_model=SuggestBatchPublic, summary="Suggest tags for several artworks",
             responses=problem_responses(400, 401, 403, 413, 422, 503))
async def suggest_batch(body: SuggestBatchCreate, settings: SettingsDep, tagger: TaggerDep,
                        batcher: BatcherDep, metrics: MetricsDep) -> SuggestBatchPublic:
    if len(body.artworks) > settings.max_batch:
        raise RequestValidationError([{
            "loc": ("body", "artworks"), "type": "too_long",
            "msg": f"at most {settings.max_batch} artworks per request, got {len(body.artworks)}",
        }])
    options = _effective(body.options, settings.suggestion_limit)
    # one job, hence one tagger call: the encoder embeds the whole batch at once
    future = batcher.submit([item.artwork for item in body.artworks], options)
    results = await asyncio.wrap_future(future)
    metrics.suggestions_served.inc(sum(len(r) for r in results))
    return SuggestBatchPublic(
        model_version=future.model_version or tagger.model_version,
        results=[BatchItemPublic(id=item.id, suggestions=r) for item, r in zip(body.artworks, results)],
    )
