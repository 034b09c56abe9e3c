"""``/healthz`` (the process answers), ``/readyz`` (model loaded, broker reachable), ``/metrics``."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from arttag_api.deps import ServicesDep
from arttag_api.models import HealthPublic, ReadinessPublic

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthPublic, summary="Liveness")
async def healthz() -> HealthPublic:
    return HealthPublic()


@router.get("/readyz", response_model=ReadinessPublic, summary="Readiness: model loaded, broker reachable",
            responses={503: {"model": ReadinessPublic, "description": "Not ready"}})
async def readyz(services: ServicesDep) -> JSONResponse:
    detail: list[str] = []
    tagger = services.tagger
    if tagger is None:
        detail.append(services.tagger_error or "model bundle loading")
    watcher = services.watcher
    if tagger is not None and watcher is not None and watcher.last_error:
        # still ready: the previous model serves; this says why the new one does not
        detail.append(f"new model bundle refused, {tagger.model_version} keeps serving: {watcher.last_error}")
    broker = await run_in_threadpool(services.broker_check)
    if not broker:
        detail.append(f"Kafka not reachable at {services.settings.kafka.bootstrap_servers}")
    view = services.view
    if view is None:
        view_state = "disabled"
    elif services.follower is not None and services.follower.error:
        view_state = "error"
        detail.append(f"latest view: {services.follower.error}")
    else:
        view_state = "caught_up" if view.caught_up.is_set() else "catching_up"
    body = ReadinessPublic(
        ready=tagger is not None and broker,
        model_loaded=tagger is not None,
        model_version=tagger.model_version if tagger is not None else None,
        broker_reachable=broker,
        latest_view=view_state,
        latest_view_artworks=len(view) if view is not None else 0,
        detail=detail,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if body.ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}})
async def metrics(services: ServicesDep) -> Response:
    if services.view is not None:
        services.metrics.latest_view_artworks.set(len(services.view))
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
