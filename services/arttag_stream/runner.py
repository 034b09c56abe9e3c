"""Running the worker: state, metrics and the faust Worker around :func:`create_app`."""

from __future__ import annotations

import logging

import faust
from arttag.curation.learning import OnlineLearner
from arttag.encoders.loader import encoder_choice
from arttag.kafka.topics import StreamTopics
from arttag.model.bundle_watch import BundleWatcher, bundle_loader, serves_pointer
from arttag.model.tagger import Tagger
from arttag.settings import StreamSettings

from arttag_stream.app import create_app
from arttag_stream.metrics import StreamMetrics
from arttag_stream.processing import StateStore
from arttag_stream.state import LatestFollower

log = logging.getLogger(__name__)


def load_stream_tagger(settings: StreamSettings, *, bulk: bool = False) -> Tagger:
    """The trained bundle at ``settings.bundle_dir`` with the configured encoder; ``bulk`` (replay)
    lets an fp32 bundle use the torch bulk encoder when ``ARTTAG_ENCODER__BULK_DEVICE`` is set."""
    from arttag.model.bundle import open_tagger

    return open_tagger(settings.bundle_dir, settings.encoder, kind=settings.encoder_kind, bulk=bulk)


def bundle_watcher(settings: StreamSettings, tagger: Tagger,
                   learner: OnlineLearner | None = None) -> BundleWatcher | None:
    """Hot reload of ``settings.bundle_dir`` when ``tagger`` was loaded from it and reloading is on;
    with a ``learner``, each new version learns the accepted artworks before it serves."""
    if settings.bundle_reload_interval_s <= 0 or not serves_pointer(tagger, settings.bundle_dir):
        return None
    loader = bundle_loader(settings.encoder, settings.encoder_kind)
    return BundleWatcher(settings.bundle_dir, learner.loader(loader) if learner is not None else loader, tagger,
                         interval_s=settings.bundle_reload_interval_s)


def start_learning(settings: StreamSettings, tagger: Tagger) -> OnlineLearner | None:
    """Online learning (``settings.online_learning``): the decisions and the catalogue read to their
    ends before the worker takes events, the tagger taught every accepted artwork, then followed."""
    if not settings.online_learning:
        return None
    learner = OnlineLearner.following(settings.kafka)
    learner.load()
    learner.attach(tagger)
    learner.start()
    return learner


def build_monitor(settings: StreamSettings, metrics: StreamMetrics):
    """The data-quality monitor on the worker's registry, with the bundle's reference profile if any."""
    from arttag.errors import ModelError
    from arttag.quality.monitoring import DataQualityMonitor, load_reference_profile

    try:
        profile = load_reference_profile(settings.bundle_dir)
    except ModelError:
        log.info("no reference profile in %s: data-quality drift gauges off", settings.bundle_dir)
        profile = None
    return DataQualityMonitor(metrics.registry, profile)


def run_worker(
    settings: StreamSettings,
    tagger: Tagger,
    *,
    app_id: str | None = None,
    model_version: str | None = None,
) -> int:
    """Rebuild the state, serve metrics, run the worker until SIGINT/SIGTERM."""
    topics = StreamTopics.for_prefix(settings.kafka.topic_prefix)
    store = StateStore()
    follower = LatestFollower(settings.kafka, topics.latest, store)
    follower.load()
    follower.start()
    learner = start_learning(settings, tagger)
    metrics = StreamMetrics()
    monitor = build_monitor(settings, metrics)
    encoder = getattr(tagger, "encoder", None)
    labels = metrics.record_encoder(encoder)
    choice = encoder_choice(encoder)
    log.info("worker encoder %s: variant %s on %s, because %s%s", labels["name"], labels["variant"],
             labels["provider"], labels["reason"], f" ({choice.detail})" if choice and choice.detail else "")
    metrics.serve(settings.metrics_port)
    watcher = bundle_watcher(settings, tagger, learner) if model_version is None else None
    app = create_app(settings, tagger, app_id=app_id, store=store, metrics=metrics,
                     model_version=model_version, monitor=monitor, watcher=watcher, learner=learner)
    log.info("worker %s: model %s, batches of up to %d within %d ms, metrics on :%s",
             app.conf.id, model_version or tagger.model_version, settings.batch_max_events,
             settings.batch_max_ms, settings.metrics_port or "off")
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    if watcher is not None:
        watcher.start()
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        if watcher is not None:
            watcher.stop()
        follower.close()
        if learner is not None:
            learner.close()
        save_embeddings(settings, watcher.tagger if watcher is not None else tagger)
    return 0


def save_embeddings(settings: StreamSettings, tagger: Tagger) -> None:
    """Write the serving encoder's embedding cache to ``ARTTAG_ENCODER__CACHE_DIR`` (when set), so the
    next worker starts warm; a failure to write is logged, never raised (the offsets are committed)."""
    from arttag.encoders.cache import persist

    if settings.encoder.cache_dir is None:
        return
    try:
        path = persist(getattr(tagger, "encoder", None), settings.encoder.cache_dir)
    except OSError as exc:
        log.error("embedding cache not saved to %s: %s", settings.encoder.cache_dir, exc)
        return
    if path is not None:
        log.info("embedding cache saved to %s", path)
