"""FastAPI dependencies: settings (lru_cached, overridden by tests and ``create_app``) and services."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated

from arttag.catalogue.vocabulary import Vocabulary
from arttag.curation.learning import OnlineLearner
from arttag.curation.store import CurationStore
from arttag.kafka.artworks import CatalogueFollower, LatestArtworks
from arttag.model.bundle_watch import BundleWatcher
from arttag.model.tagger import CatalogueTagger, Tagger
from arttag.settings import ApiSettings
from fastapi import Depends, HTTPException, Request

from arttag_api.batcher import SuggestBatcher
from arttag_api.latest_view import LatestSuggestionsView, LatestViewFollower
from arttag_api.metrics import ApiMetrics
from arttag_api.publisher import FeedbackPublisher

log = logging.getLogger(__name__)


@lru_cache
def get_settings() -> ApiSettings:
    return ApiSettings()


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]


@dataclass
class Services:
    """Everything the routes use, built once by ``create_app`` (the composition root)."""

    settings: ApiSettings
    metrics: ApiMetrics
    view: LatestSuggestionsView | None
    publisher_factory: Callable[[], FeedbackPublisher]
    broker_check: Callable[[], bool]
    tagger: CatalogueTagger | None = None
    tagger_error: str | None = None
    follower: LatestViewFollower | None = None
    batcher: SuggestBatcher | None = None
    loader: threading.Thread | None = None
    watcher: BundleWatcher | None = None
    learner: OnlineLearner | None = None
    catalogue: LatestArtworks | None = None
    catalogue_follower: CatalogueFollower | None = None
    store_factory: Callable[[], CurationStore] | None = None
    _publisher: FeedbackPublisher | None = None
    _store: CurationStore | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def vocabulary(self) -> Vocabulary | None:
        return None if self.tagger is None else self.tagger.vocabulary

    def publisher(self) -> FeedbackPublisher:
        # created on first use, so an API that never takes feedback opens no producer
        with self._lock:
            if self._publisher is None:
                self._publisher = self.publisher_factory()
            return self._publisher

    def curation_store(self) -> CurationStore:
        """The curation database, opened on first use (an API that serves no curation opens none)."""
        with self._lock:
            if self._store is None:
                factory = self.store_factory or (lambda: CurationStore.open(self.settings.curation_database_url))
                self._store = factory()
            return self._store

    def use_tagger(self, tagger: Tagger) -> None:
        """Serve ``tagger`` from the next request batch on (hot reload swaps through this)."""
        self.tagger, self.tagger_error = tagger, None

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        if self.follower is not None:
            self.follower.stop()
        if self.learner is not None:
            self.learner.close()
        if self.catalogue_follower is not None:
            self.catalogue_follower.stop()
        if self.batcher is not None:
            self.batcher.close()
        if self._publisher is not None:
            self._publisher.close()


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_tagger(services: ServicesDep) -> CatalogueTagger:
    if services.tagger is None:
        detail = services.tagger_error or "the model bundle is still loading"
        raise HTTPException(503, detail, headers={"Retry-After": "5"})
    return services.tagger


TaggerDep = Annotated[CatalogueTagger, Depends(get_tagger)]


def get_vocabulary(tagger: TaggerDep) -> Vocabulary:
    return tagger.vocabulary


VocabularyDep = Annotated[Vocabulary, Depends(get_vocabulary)]


def get_batcher(services: ServicesDep, tagger: TaggerDep) -> SuggestBatcher:
    assert services.batcher is not None
    return services.batcher


BatcherDep = Annotated[SuggestBatcher, Depends(get_batcher)]


def get_view(services: ServicesDep) -> LatestSuggestionsView:
    if services.view is None:
        raise HTTPException(503, "the latest-suggestions view is disabled (ARTTAG_LATEST_VIEW=false)")
    return services.view


ViewDep = Annotated[LatestSuggestionsView, Depends(get_view)]


def get_publisher(services: ServicesDep) -> FeedbackPublisher:
    return services.publisher()


PublisherDep = Annotated[FeedbackPublisher, Depends(get_publisher)]


def get_metrics(services: ServicesDep) -> ApiMetrics:
    return services.metrics


MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]
