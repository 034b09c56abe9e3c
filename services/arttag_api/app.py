"""The composition root of the HTTP API: ``create_app(settings, tagger=...)`` builds every adapter."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from arttag.curation.learning import OnlineLearner
from arttag.curation.store import CurationStore
from arttag.kafka.artworks import CatalogueFollower, LatestArtworks
from arttag.model.tagger import CatalogueTagger
from arttag.settings import ApiSettings, KafkaSettings
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from arttag_api.auth import API_KEY_HEADER, CONTRIBUTOR_TOKEN_HEADER, ApiKeyRequired
from arttag_api.batcher import SuggestBatcher
from arttag_api.deps import Services, get_settings
from arttag_api.latest_view import LatestSuggestionsView, LatestViewFollower
from arttag_api.limits import BodyLimitMiddleware
from arttag_api.metrics import ApiMetrics, MetricsMiddleware
from arttag_api.problems import install_problem_handlers, problem_response
from arttag_api.publisher import FeedbackPublisher, KafkaFeedbackPublisher
from arttag_api.ratelimit import RateLimitMiddleware
from arttag_api.routers import artworks, curation, feedback, health, suggest, tags
from arttag_api.web.docs import install_docs
from arttag_api.web.router import install_review_desk

log = logging.getLogger(__name__)

DESCRIPTION = """Tag suggestions with explanations for artwork metadata, the latest suggestions
the stream published, curator feedback, and the tag vocabulary.

Writes (`POST /v1/feedback`) need an API key in the `X-API-Key` header: an integration's
(the actor is named in the body) or a curator's (`ARTTAG_CURATORS`; the key is the actor).
Public contributors register with `POST /v1/contributors` and vote with the token they get
in `X-Contributor-Token` (`POST /v1/votes`). Reads, the curation state and the review queue
included, are public unless `ARTTAG_PUBLIC_READS=false`. Errors are `application/problem+json`.

The API sheds load instead of queueing it: `/v1` requests are rate limited per API key
and, without a key, per client address (429 with `Retry-After`); bodies, batches and the
text of one request are bounded (413, 422); when the tagger's queue is full a suggest
request is answered 503 with `Retry-After` at once."""


class BrokerCheck:
    """Whether Kafka answers a metadata request; cached briefly so /readyz probes stay cheap."""

    def __init__(self, kafka: KafkaSettings, ttl_s: float = 5.0, timeout_s: float = 2.0) -> None:
        self.kafka = kafka
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self._checked_at = 0.0
        self._ok = False
        self._lock = threading.Lock()

    def __call__(self) -> bool:
        with self._lock:
            if time.monotonic() - self._checked_at < self.ttl_s:
                return self._ok
            from arttag.kafka.admin import admin_client

            try:
                admin_client(self.kafka).list_topics(timeout=self.timeout_s)
                self._ok = True
            except Exception as exc:  # any failure means "not reachable", reported in /readyz
                log.warning("Kafka at %s not reachable: %s", self.kafka.bootstrap_servers, exc)
                self._ok = False
            self._checked_at = time.monotonic()
            return self._ok


def load_bundle_tagger(settings: ApiSettings) -> CatalogueTagger:
    """The production tagger: the bundle in ``settings.bundle_dir`` with the configured encoder.

    A bundle trained with the hashing fake encoder (demo, tests) gets that encoder back
    from its manifest instead of the ONNX model.
    """
    from arttag.model.bundle import open_tagger

    return open_tagger(settings.bundle_dir, settings.encoder)


def _watch_bundle(services: Services) -> None:
    """Hot reload: follow ``bundle_dir`` when the serving tagger came from it and reloading is on."""
    from arttag.model.bundle_watch import BundleWatcher, bundle_loader, serves_pointer

    settings = services.settings
    if settings.bundle_reload_interval_s <= 0 or not serves_pointer(services.tagger, settings.bundle_dir):
        return
    loader = bundle_loader(settings.encoder)
    if services.learner is not None:
        loader = services.learner.loader(loader)  # a new version learns the decisions before it serves
    services.watcher = BundleWatcher(settings.bundle_dir, loader, services.tagger,
                                     interval_s=settings.bundle_reload_interval_s)
    services.watcher.subscribe(services.use_tagger)
    services.watcher.start()


def _load_in_background(services: Services, loader: Callable[[ApiSettings], CatalogueTagger]) -> threading.Thread:
    def run() -> None:
        started = time.perf_counter()
        try:
            services.tagger = loader(services.settings)
        except Exception as exc:  # reported by /readyz and 503s; the process stays up for probes
            log.exception("cannot load the model bundle from %s", services.settings.bundle_dir)
            # clients see this in 503s and /readyz: the path and the cause stay in the log
            services.tagger_error = f"cannot load the model bundle ({type(exc).__name__}; see the server log)"
            return
        log.info("model %s loaded in %.1fs", services.tagger.model_version, time.perf_counter() - started)
        if services.learner is not None:
            services.learner.attach(services.tagger)
        _watch_bundle(services)

    thread = threading.Thread(target=run, name="model-loader", daemon=True)
    thread.start()
    return thread


def _document_limits(app: FastAPI, settings: ApiSettings) -> None:
    """Puts this deployment's request bounds into the published OpenAPI (they are settings, not constants)."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()
            batch = schema.get("components", {}).get("schemas", {}).get("SuggestBatchCreate")
            if batch:
                batch["properties"]["artworks"]["maxItems"] = settings.max_batch
            text = (f" At most {settings.max_request_text_chars} characters of text in all artworks of "
                    f"one request together, and {settings.max_body_bytes} bytes of body.")
            for name in ("SuggestCreate", "SuggestBatchCreate"):
                model = schema.get("components", {}).get("schemas", {}).get(name)
                if model:
                    model["description"] = (model.get("description", "") + text).strip()
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    settings: ApiSettings | None = None,
    tagger: CatalogueTagger | None = None,
    *,
    publisher: FeedbackPublisher | None = None,
    view: LatestSuggestionsView | None = None,
    broker_check: Callable[[], bool] | None = None,
    tagger_loader: Callable[[ApiSettings], CatalogueTagger] = load_bundle_tagger,
    learner: OnlineLearner | None = None,
    store: CurationStore | None = None,
    catalogue: LatestArtworks | None = None,
) -> FastAPI:
    """The API. Anything not passed in is built from ``settings``.

    ``tagger=None`` loads the bundle in the background at start-up (``/readyz``
    says when it is ready); ``view=None`` follows the latest-suggestions topic
    when ``settings.latest_view`` is on, ``catalogue=None`` the artwork topics when
    ``settings.catalogue_view`` is (unset: as ``latest_view``); ``store=None`` opens
    ``settings.curation_database_url`` on first use. The tagger follows ``learner`` (online
    learning, :mod:`arttag.curation.learning`); when the API loads its own bundle and
    ``settings.online_learning`` is on, it builds one that follows the decisions topic (and
    reads the catalogue from the API's own catalogue table when it has one).
    """
    settings = settings or get_settings()
    metrics = ApiMetrics()
    follower = None
    if view is None and settings.latest_view:
        view = LatestSuggestionsView()
        follower = LatestViewFollower(settings.kafka, view)
    catalogue_follower = None
    follow_catalogue = settings.latest_view if settings.catalogue_view is None else settings.catalogue_view
    if catalogue is None and follow_catalogue:
        catalogue = LatestArtworks()
        catalogue_follower = CatalogueFollower(settings.kafka, catalogue)
    own_learner = learner is None and tagger is None and settings.online_learning
    if own_learner:
        learner = OnlineLearner.following(settings.kafka, catalogue=catalogue)
    if learner is not None and tagger is not None:
        learner.attach(tagger)
    if view is not None:
        view.on_change = metrics.latest_view_artworks.set
    services = Services(
        settings=settings,
        metrics=metrics,
        view=view,
        publisher_factory=(lambda: publisher) if publisher is not None
        else (lambda: KafkaFeedbackPublisher(settings.kafka)),
        broker_check=broker_check or BrokerCheck(settings.kafka),
        tagger=tagger,
        follower=follower,
        learner=learner,
        catalogue=catalogue,
        catalogue_follower=catalogue_follower,
        store_factory=(lambda: store) if store is not None else None,
    )
    services.batcher = SuggestBatcher(
        lambda: services.tagger, max_batch=settings.max_batch,  # type: ignore[arg-type,return-value]
        on_batch=lambda n: (metrics.tagger_batch_size.observe(n), metrics.artworks_suggested.inc(n)),
        max_queued=settings.queue_max_artworks, max_wait_s=settings.queue_max_wait_s,
        on_reject=lambda reason: metrics.tagger_queue_rejections.labels(reason).inc(),
    )
    metrics.tagger_queue_depth.set_function(lambda: services.batcher.queued if services.batcher else 0)

    review_desk = None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if follower is not None:
            follower.start()
        if own_learner and learner is not None:
            learner.start()  # catches up in its thread; the tagger learns as it does, batch by batch
        if catalogue_follower is not None:
            catalogue_follower.start()
        if review_desk is not None:
            review_desk.start()
        if services.tagger is None and services.loader is None:
            services.loader = _load_in_background(services, tagger_loader)
        if not settings.api_key_hashes:
            log.warning("no API keys configured (ARTTAG_API_KEY_HASHES): writes will be refused")
        yield
        if review_desk is not None:
            review_desk.stop()  # publishes the actions still held for undo, before the producer closes
        services.close()

    docs = settings.docs_enabled
    app = FastAPI(title="arttag API", version="1", description=DESCRIPTION, lifespan=lifespan,
                  openapi_url="/openapi.json" if docs else None, docs_url=None, redoc_url=None)
    if docs:
        install_docs(app)  # Swagger UI and ReDoc from local files, not FastAPI's CDN
    app.state.services = services
    # routes read settings through the lru_cached dependency; this app answers with its own
    app.dependency_overrides[get_settings] = lambda: settings

    read_deps = [] if settings.public_reads else [ApiKeyRequired]
    app.include_router(suggest.router, dependencies=read_deps)
    app.include_router(artworks.router, dependencies=read_deps)
    app.include_router(tags.router, dependencies=read_deps)
    app.include_router(curation.reads, dependencies=read_deps)
    app.include_router(feedback.router)
    app.include_router(curation.writes)
    app.include_router(health.router)
    if settings.metrics_enabled:
        app.include_router(health.metrics_router)
    if settings.review_enabled:
        review_desk = install_review_desk(app, services)

    install_problem_handlers(app)

    @app.exception_handler(SQLAlchemyError)
    async def _database(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        # the driver's message may name hosts and users: logged, not answered
        log.error("%s %s: curation database error: %s", request.method, request.url.path, exc)
        return problem_response(503, "Service unavailable", "the curation database cannot be reached; "
                                "the error was logged", instance=request.url.path, headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return problem_response(500, "Internal server error", "the error was logged",
                                instance=request.url.path)

    _document_limits(app, settings)

    # the last added runs first: CORS headers go on every answer (a browser cannot read a 429
    # without them), metrics see every request, and the rate limit refuses before any body is read
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(RateLimitMiddleware, settings=settings, metrics=metrics)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_credentials=False,
                           allow_methods=["GET", "POST"], allow_headers=["Content-Type", API_KEY_HEADER, CONTRIBUTOR_TOKEN_HEADER],
                           expose_headers=["Retry-After"], max_age=600)
    return app
