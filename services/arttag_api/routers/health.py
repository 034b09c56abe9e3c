"""``/healthz`` (the process answers), ``/readyz`` (model loaded, broker reachable, latest view and
catalogue not in error), ``/metrics``."""

from __future__ import annotations

import ipaddress
import logging

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from arttag_api.deps import ServicesDep
from arttag_api.models import HealthPublic, ReadinessPublic
from arttag_api.problems import problem_responses
from arttag_api.ratelimit import client_address

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
        detail.append("Kafka not reachable (the server log names the address)")
    view = services.view
    if view is None:
        view_state = "disabled"
    elif services.follower is not None and services.follower.error:
        view_state = "error"
        # the follower's error names topics and broker codes: logged by it, summarised here
        detail.append("latest view: cannot read the latest-suggestions topic (see the server log)")
    else:
        view_state = "caught_up" if view.caught_up.is_set() else "catching_up"
    catalogue, catalogue_follower = services.catalogue, services.catalogue_follower
    if catalogue is None:
        catalogue_state = "disabled"
    elif catalogue_follower is not None and catalogue_follower.error:
        catalogue_state = "error"
        detail.append("catalogue: cannot read the artwork topics (see the server log)")
    else:
        catalogue_state = "caught_up" if catalogue.caught_up.is_set() else "catching_up"
    body = ReadinessPublic(
        # a view in error would answer every GET of stored suggestions wrongly (404s), so a
        # balancer must not send traffic here until it reads its topic again
        ready=tagger is not None and broker and view_state != "error" and catalogue_state != "error",
        model_loaded=tagger is not None,
        model_version=tagger.model_version if tagger is not None else None,
        broker_reachable=broker,
        latest_view=view_state,
        latest_view_artworks=len(view) if view is not None else 0,
        catalogue=catalogue_state,
        catalogue_artworks=len(catalogue) if catalogue is not None else 0,
        detail=detail,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if body.ready else 503)


metrics_router = APIRouter(tags=["health"])


def _allowed(address: str | None, networks: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(n, strict=False) for n in networks)


@metrics_router.get(
    "/metrics", summary="Prometheus metrics (only to clients in ARTTAG_METRICS_NETWORKS)", response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"},
               **problem_responses(404)})
async def metrics(request: Request, services: ServicesDep) -> Response:
    address = client_address(request.scope)
    if not _allowed(address, services.settings.metrics_networks):
        # 404, as for any path that is not there: nothing tells an outsider what it missed
        log.info("/metrics refused to %s (not in ARTTAG_METRICS_NETWORKS)", address)
        raise HTTPException(404, "Not Found")
    if services.view is not None:
        services.metrics.latest_view_artworks.set(len(services.view))
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
