"""The faust app factory and its one agent; the work itself is in :mod:`arttag_stream.processing`.

Delivery: the agent takes a micro-batch and hands it to
:func:`arttag_stream.pipeline.process_batch` in the tagger's thread, then publishes the
result on the event loop through a :class:`FaustSuggestionSink` in the one order of
:class:`arttag.kafka.sink.PublishingOrder` (history suggestions and dead letters, wait for
Kafka's acknowledgements (acks=all), then the latest-suggestions records, wait again), and
only then acks the batch's events; faust commits acked offsets every ``commit_interval_s``.
A crash anywhere before that leaves the offsets uncommitted, so a restarted worker
reprocesses the batch (at-least-once; outputs carry deterministic ids).

Three stages overlap under a backlog. An encoder thread encodes a batch ahead
(:func:`arttag_stream.pipeline.prepare_batch`) while the tagger's thread scores the one before
it, and the event loop publishes the one before that: the encoder's onnxruntime threads and
the scorers' Python each leave cores idle part of the time, and the tagger would otherwise
wait for Kafka's acknowledgements every batch. A batch's records are sent only once the
previous batch's are acknowledged and its events acked, so records and offsets keep their
order; at most :data:`MAX_PUBLISHING` tagged batches wait for Kafka, then the tagger waits.

No message stops the worker: the processor turns every bad message into a dead
letter, no record it publishes exceeds ``max_record_bytes``, and a message that
crashes the process itself, or whose output the broker refuses as too large for its topic,
is dead-lettered after ``max_attempts`` restarts (:mod:`arttag_stream.attempts`).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import ssl
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Protocol

import faust
from aiokafka.errors import MessageSizeTooLargeError, RecordTooLargeError
from arttag.curation.feedback import decode_feedback
from arttag.curation.learning import OnlineLearner
from arttag.errors import EventDecodeError
from arttag.events import (
    ArtworkMetadata,
    TagFeedbackGiven,
    TagSuggestion,
    encode_event,
)
from arttag.kafka import aiokafka_producer_options, murmur2_partitioner
from arttag.kafka.sink import AsyncSuggestionSink, OutRecord, PublishFailed, RecordsRefused, dead_letter_key
from arttag.kafka.topics import StreamTopics
from arttag.model.bundle_watch import BundleWatcher
from arttag.model.tagger import SuggestOptions, Tagger
from arttag.settings import KafkaSettings, StreamSettings
from faust.transport.drivers import aiokafka as faust_aiokafka

from arttag_stream.attempts import AttemptJournal, CrashGuard, Step
from arttag_stream.batching import take_batches
from arttag_stream.metrics import StreamMetrics
from arttag_stream.pipeline import log_outputs, prepare_batch, process_batch, publish_failed
from arttag_stream.processing import (
    BatchProcessor,
    BatchResult,
    RawMessage,
    StateStore,
    make_dead_letter,
)

log = logging.getLogger(__name__)


DEFAULT_AGENT_NAME = "arttag-stream.tag-artworks"

MAX_PUBLISHING = 2
"""Tagged batches waiting for Kafka at most; the tagger waits beyond (memory stays bounded
when the broker is slow)."""


class DataQualityObserver(Protocol):
    """What the worker tells the data-quality monitor about each batch."""

    def observe_artworks(self, artworks: Sequence[ArtworkMetadata]) -> None: ...

    def observe_suggestions(self, suggestions: Sequence[Sequence[TagSuggestion]]) -> None: ...

    def observe_feedback(self, feedback: TagFeedbackGiven) -> None: ...


class _ArttagProducer(faust_aiokafka.Producer):
    """faust's aiokafka producer with arttag's producer guarantees (acks=all, idempotent, murmur2);
    faust itself turns idempotence on only inside transactions."""

    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), **aiokafka_producer_options()}


class _ArttagApp(faust.App):
    def _new_producer(self) -> _ArttagProducer:
        return _ArttagProducer(self.transport, loop=self.loop, beacon=self.beacon)


class FaustSuggestionSink(AsyncSuggestionSink):
    """Publishes through the faust app's producer (aiokafka, arttag's guarantees), on the
    event loop: :meth:`publish_async` writes the waves of :class:`arttag.kafka.sink.PublishingOrder`."""

    def __init__(self, topics: StreamTopics, channels: Mapping[str, Any]) -> None:
        super().__init__(topics)
        self.channels = channels

    async def _write_async(self, records: Sequence[OutRecord]) -> None:
        """Send ``records`` and wait for every acknowledgement; :class:`RecordsRefused` names the
        records the broker refused as too large (aiokafka gives a record over its batch size a
        batch of its own, so the refusal of a batch is that record's), else the first error."""
        sent: list[tuple[OutRecord, Any]] = []
        refused: list[OutRecord] = []
        for r in records:
            try:
                sent.append((r, await self.channels[r.topic].send(
                    key=r.key, value=r.value, headers=r.headers or None, force=True)))
            except Exception as exc:
                if not _too_large(exc):  # over the client's own ceiling (faust wraps it) or not
                    raise
                refused.append(r)
        outcomes = await asyncio.gather(*(future for _, future in sent), return_exceptions=True)
        refused += [r for (r, _), outcome in zip(sent, outcomes) if _too_large(outcome)]
        if refused:
            raise RecordsRefused(
                f"the broker refused {len(refused)} of {len(records)} records as too large, the first "
                f"{len(refused[0].key or b'') + len(refused[0].value)} bytes for {refused[0].topic} (is its "
                "max.message.bytes below ARTTAG_MAX_RECORD_BYTES?)", refused)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome


def _too_large(outcome: object) -> bool:
    """Whether a send ended in the broker's (or the client's) refusal of the record as too large."""
    too_large = (MessageSizeTooLargeError, RecordTooLargeError)
    return isinstance(outcome, too_large) or isinstance(getattr(outcome, "__cause__", None), too_large)


def faust_broker_options(kafka: KafkaSettings) -> dict[str, Any]:
    """faust's ``broker`` and ``broker_credentials`` from our Kafka settings."""
    options: dict[str, Any] = {
        "broker": [f"kafka://{server.strip()}" for server in kafka.bootstrap_servers.split(",")],
        "broker_client_id": kafka.client_id,
    }
    context = None
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(
            cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None
        )
        if kafka.ssl_certfile:
            context.load_cert_chain(str(kafka.ssl_certfile),
                                    str(kafka.ssl_keyfile) if kafka.ssl_keyfile else None)
    if kafka.security_protocol.startswith("SASL"):
        options["broker_credentials"] = faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.get_secret_value() if kafka.sasl_password else None,
            mechanism=kafka.sasl_mechanism or "PLAIN",
            ssl_context=context,
        )
    elif context is not None:
        options["broker_credentials"] = context
    return options


def create_app(
    settings: StreamSettings,
    tagger: Tagger,
    *,
    app_id: str | None = None,
    agent_name: str = DEFAULT_AGENT_NAME,
    store: StateStore | None = None,
    metrics: StreamMetrics | None = None,
    model_version: str | None = None,
    monitor: DataQualityObserver | None = None,
    watcher: BundleWatcher | None = None,
    learner: OnlineLearner | None = None,
) -> faust.App:
    """A faust app whose agent tags artworks from the created and updated topics.

    ``app_id`` is also the consumer group (default ``settings.consumer_group``);
    ``model_version`` labels the outputs (default: the tagger's); ``monitor``
    (e.g. :class:`arttag.quality.monitoring.DataQualityMonitor`) sees every batch's
    artworks and suggestions, and a second agent (``<agent_name>.feedback``) hands it
    each feedback event from ``tags.feedback.v1``. With a ``watcher``, each new model version
    it loads serves from the next batch on (labelled with its own version). With a ``learner``
    (online learning, :mod:`arttag.curation.learning`), tags rejected for an artwork are left out
    of its suggestions while its content is the one they were rejected on; the tagger should
    follow the same learner (``learner.attach(tagger)``) to learn the accepted artworks.
    """
    app_id = app_id or settings.consumer_group
    topics = StreamTopics.for_prefix(settings.kafka.topic_prefix)
    store = store if store is not None else StateStore()
    metrics = metrics or StreamMetrics()
    processor = BatchProcessor(
        tagger, store, consumer=app_id,
        options=SuggestOptions(limit=settings.suggestion_limit), model_version=model_version,
        max_record_bytes=settings.max_record_bytes, auto_apply_precision=settings.auto_apply_precision,
        rejected=learner.rejected_tags if learner is not None else None,
    )
    if watcher is not None:
        watcher.subscribe(processor.use)
    datadir = settings.data_dir / app_id
    datadir.mkdir(parents=True, exist_ok=True)  # faust creates only the last level
    app = _ArttagApp(
        app_id,
        **faust_broker_options(settings.kafka),
        autodiscover=False,
        web_enabled=False,
        topic_disable_leader=True,
        store="memory://",
        datadir=str(datadir),
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset=settings.auto_offset_reset,
        producer_acks=-1,
        producer_partitioner=murmur2_partitioner,  # also what faust assumes when it maps keys
        broker_commit_interval=settings.commit_interval_s,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        consumer_group_instance_id=settings.group_instance_id,
        # The client's own ceiling stays above ours: our check names the message, the client's would not.
        producer_max_request_size=max(1_048_576, settings.max_record_bytes + 65_536),
        broker_rebalance_timeout=max(settings.session_timeout_s * 2, 10.0),
        broker_request_timeout=max(90.0, settings.session_timeout_s + 30.0),  # faust: >= session
        # Fetch a few batches ahead, not thousands: under a backlog the fetcher would
        # otherwise compete with the tagger for the CPU (and the GIL) for nothing.
        stream_buffer_maxsize=max(8 * settings.batch_max_events, 256),
    )
    source = app.topic(topics.created, topics.updated, key_serializer="raw", value_serializer="raw")
    suggestions_t = app.topic(topics.suggestions, key_serializer="raw", value_serializer="raw")
    latest_t = app.topic(topics.latest, key_serializer="raw", value_serializer="raw")
    dead_t = app.topic(topics.dead_letters, key_serializer="raw", value_serializer="raw")
    # One thread: the tagger is CPU-bound and keeps the event loop (heartbeats) free.
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tagger")
    max_events = settings.batch_max_events
    within_s = settings.batch_max_ms / 1000.0
    idle_s = min(settings.batch_idle_ms, settings.batch_max_ms) / 1000.0

    guard = CrashGuard(AttemptJournal(datadir / "inflight"), settings.max_attempts, processor)

    sink = FaustSuggestionSink(topics, {
        topics.suggestions: suggestions_t, topics.latest: latest_t, topics.dead_letters: dead_t})
    process = partial(process_batch, guard)
    # Encoding ahead: the next batch's texts are encoded in this thread while the tagger's
    # thread scores the current one (arttag.encoders.prefetch).
    encoder_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encoder")
    publishing: collections.deque[asyncio.Task] = collections.deque()
    """Batches being published, oldest first; each waits for the one before it."""

    def raw_messages(events: list[Any]) -> list[RawMessage]:
        messages = []
        for event in events:
            m = event.message
            messages.append(RawMessage(m.topic, m.partition, m.offset, m.key, m.value,
                                       int(m.timestamp * 1000) if m.timestamp else None))
            metrics.events_in.labels(m.topic).inc()
            try:
                lag = app.consumer.highwater(m.tp) - m.offset - 1
                metrics.consumer_lag.labels(m.topic, str(m.partition)).set(max(lag, 0))
            except Exception:  # noqa: BLE001 - lag is best effort; it must not stop the stream
                pass
        metrics.batch_size.observe(len(messages))
        return messages

    async def handle_batch(stream: faust.StreamT, events: list[Any], messages: list[RawMessage],
                           started: float, preparing: asyncio.Future, previous: asyncio.Future | None,
                           tagger_free: asyncio.Future) -> None:
        """Wait for the batch's encoding ahead and for the tagger, process the batch in the
        tagger's thread, queue its publishing; ``tagger_free`` is set once the next batch may
        be processed (publishing within :data:`MAX_PUBLISHING`)."""
        try:
            steps = await preparing
            if previous is not None:
                await previous
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(executor, process, messages, steps)
            task = asyncio.create_task(publish_batch(stream, events, messages, steps, result, started,
                                                     publishing[-1] if publishing else None))
            task.add_done_callback(crash_on_error)
            publishing.append(task)
            while publishing and publishing[0].done():
                publishing.popleft()
            if len(publishing) > MAX_PUBLISHING:
                await publishing.popleft()  # Kafka is slower than the tagger: wait for it
        finally:
            if not tagger_free.done():
                tagger_free.set_result(None)

    async def publish_batch(stream: faust.StreamT, events: list[Any], messages: list[RawMessage],
                            steps: list[Step], result: BatchResult, started: float,
                            after: asyncio.Task | None) -> None:
        """Publish a processed batch once the one before it is (``after``), wait for every
        acknowledgement, then ack its events."""
        if after is not None:
            await after  # its records first, and its events acked first
        sent = time.perf_counter()
        try:
            await sink.publish_async(result)
        except PublishFailed as exc:
            # Leave without acking: the uncommitted batch is reprocessed after a restart. Records
            # refused as too large count as an attempt of their messages; nothing else does.
            counted = publish_failed(guard, steps, exc)
            log.critical("publishing failed, exiting so the batch is reprocessed%s: %s",
                         f"; counted as an attempt of {', '.join(counted)}" if counted else "", exc)
            os._exit(70)
        result.publish_s = time.perf_counter() - sent
        for event in events:
            await stream.ack(event)
        report(messages, result, started)

    def report(messages: list[RawMessage], result: BatchResult, started: float) -> None:
        metrics.encode_score_seconds.observe(result.encode_score_s)
        now = time.time()
        for message, _ in result.suggestions:
            metrics.suggestions_out.labels(topics.suggestions).inc()
            if message.timestamp_ms:
                metrics.event_latency_seconds.observe(max(now - message.timestamp_ms / 1000, 0))
        if result.latest:
            metrics.suggestions_out.labels(topics.latest).inc(len(result.latest))
        for _, d in result.dead_letters:
            metrics.dead_letters.labels(d.error_type).inc()
        for skipped in result.skipped:
            metrics.skipped.labels(skipped.reason).inc()
        log_outputs(result)
        if monitor is not None:
            try:
                monitor.observe_artworks(result.artworks)
                monitor.observe_suggestions([s.suggestions for _, s in result.suggestions])
            except Exception as exc:  # noqa: BLE001 - monitoring must never stop the stream
                log.warning("data-quality monitor failed: %s", exc)
        metrics.state_artworks.set(len(store))
        took = time.perf_counter() - started
        metrics.batch_seconds.observe(took)
        log.info("batch of %d: %d suggestions, %d dead letters, %d unchanged; tagger %.3fs, "
                 "processing %.3fs, journal %.3fs, publish %.3fs, batch %.3fs", len(messages),
                 len(result.suggestions), len(result.dead_letters), len(result.skipped), result.encode_score_s,
                 result.process_s, result.journal_s, result.publish_s, took)

    def crash_on_error(task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            # Crash-only: a bug must not let faust commit past an unprocessed batch.
            log.critical("unexpected error handling a batch; exiting", exc_info=task.exception())
            os._exit(70)

    @app.agent(source, name=agent_name)
    async def tag_artworks(stream: faust.StreamT) -> None:
        # A batch is encoded ahead while the one before it is processed; it is processed once
        # that one is, then published while the next is processed (three batches in flight).
        handling: asyncio.Task | None = None
        tagger_free: asyncio.Future | None = None
        loop = asyncio.get_running_loop()
        try:
            async for events in take_batches(stream, max_events, within=within_s, idle=idle_s):
                started = time.perf_counter()
                messages = raw_messages(events)
                preparing = loop.run_in_executor(encoder_executor, prepare_batch, guard, messages)
                previous, tagger_free = tagger_free, loop.create_future()
                handling = asyncio.create_task(handle_batch(stream, events, messages, started, preparing,
                                                            previous, tagger_free))
                handling.add_done_callback(crash_on_error)
                if previous is not None:
                    await previous  # the batch before is processed: take the next one
        finally:
            # Stopping (batches not published stay unacked and are redone after a restart): let
            # the batch in hand be processed and every batch's acknowledgements arrive, so that
            # they are not redone; a broker that does not answer leaves them unacked.
            try:
                if handling is not None and not handling.done():
                    await asyncio.wait_for(asyncio.shield(handling), timeout=30.0)
                if publishing and not publishing[-1].done():
                    await asyncio.wait_for(asyncio.shield(publishing[-1]), timeout=10.0)
            except BaseException:  # noqa: BLE001 - cancelled or timed out: redone after a restart
                if handling is not None:
                    handling.cancel()
                for task in publishing:
                    task.cancel()
            # A batch encoded ahead and never processed did not crash anything.
            await loop.run_in_executor(None, partial(encoder_executor.shutdown, wait=True))
            guard.release_unstarted()

    if monitor is not None:
        feedback_t = app.topic(topics.feedback, key_serializer="raw", value_serializer="raw")

        @app.agent(feedback_t, name=f"{agent_name}.feedback")
        async def observe_feedback(stream: faust.StreamT) -> None:
            async for event in stream.events():
                m = event.message
                where = f"{m.topic}[{m.partition}]@{m.offset}"
                try:
                    # the curation fold's reader: a newer API's extra field is ignored,
                    # not dead-lettered
                    feedback = decode_feedback(m.value)
                except EventDecodeError as exc:
                    dead = make_dead_letter(
                        RawMessage(m.topic, m.partition, m.offset, m.key, m.value),
                        str(exc), str(exc.context.get("reason", "schema")), app_id,
                        max_record_bytes=settings.max_record_bytes)
                    await (await dead_t.send(key=dead_letter_key(m.key), value=encode_event(dead),
                                             force=True))
                    metrics.dead_letters.labels(dead.error_type).inc()
                    log.warning("dead letter from %s (key %r): %s: %s", where,
                                m.key[:64] if m.key else None, dead.error_type, dead.error[:500])
                    continue
                try:
                    monitor.observe_feedback(feedback)
                except Exception as exc:  # noqa: BLE001 - monitoring must never stop the stream
                    log.warning("data-quality monitor failed on feedback from %s: %s", where, exc)
                log.debug("feedback %s on artwork %s tag %s from %s", feedback.action,
                          feedback.artwork_id, feedback.tag_id, where)

    return app
