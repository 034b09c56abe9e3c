"""One batch, start to end: process it under the crash journal and publish it through a sink.

Both process a batch with :func:`process_batch` and publish it in the order of
:meth:`arttag.kafka.sink.PublishingOrder.waves_of`, so the two publish the same records in the
same order: ``arttag replay`` calls :func:`tag_and_publish` (a confluent sink, or the in-memory
one for ``--dry-run``, blocking); the worker calls :func:`process_batch` in the tagger's thread
and publishes on its event loop with the faust sink's ``publish_async`` while it tags the next
batch (:mod:`arttag_stream.app`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from arttag.kafka.sink import PublishFailed, RecordsRefused, SuggestionSink

from arttag_stream.attempts import CrashGuard, Step
from arttag_stream.processing import BatchResult, RawMessage

log = logging.getLogger(__name__)


def prepare_batch(guard: CrashGuard, messages: Sequence[RawMessage]) -> list[Step]:
    """Plan ``messages`` and encode them ahead (blocking: the encoder's thread, while the
    batch before is processed); the steps to hand to :func:`process_batch`.

    Only a batch planned whole is encoded ahead, and it is begun in the crash journal first:
    a message that kills the process in the encoder counts as an attempt like anywhere else.
    A batch that met offsets in flight before a crash is processed one message at a time
    with nothing ahead.
    """
    steps = guard.plan(messages)
    if len(steps) == 1 and not steps[0].give_up and steps[0].messages:
        guard.begin(steps[0])
        guard.processor.prefetch(steps[0].messages)
    return steps


def process_batch(guard: CrashGuard, messages: Sequence[RawMessage],
                  steps: Sequence[Step] | None = None) -> BatchResult:
    """Plan and process ``messages`` step by step (blocking: the tagger's thread); what the
    steps produced, to be published.

    ``steps``: what :func:`prepare_batch` planned (default: planned here).
    Each step is in the crash journal while it is processed and leaves it when processed:
    a crash while publishing (a broker outage, a kill) is not the messages' fault, so it
    never counts as an attempt; the offsets are not committed either way, so the batch is
    processed again after a restart.
    """
    total = BatchResult()
    started = time.perf_counter()
    for step in steps if steps is not None else guard.plan(messages):
        result = guard.run(step)
        guard.done(step)
        total.extend(result)
    total.journal_s = time.perf_counter() - started - total.process_s
    return total


def tag_and_publish(guard: CrashGuard, messages: Sequence[RawMessage], sink: SuggestionSink) -> BatchResult:
    """:func:`process_batch`, then publish through ``sink`` (blocking: every record is
    acknowledged when it returns). ``arttag replay`` publishes this way; the worker
    publishes a batch while it tags the next (:mod:`arttag_stream.app`). When publishing
    fails :class:`arttag.kafka.sink.PublishFailed` propagates, the journal set for the exit
    (:func:`publish_failed`): the caller exits without committing, so the batch is redone.
    """
    steps = guard.plan(messages)
    result = process_batch(guard, messages, steps)
    sent = time.perf_counter()
    try:
        sink.publish(result)
    except PublishFailed as exc:
        publish_failed(guard, steps, exc)
        raise
    result.publish_s = time.perf_counter() - sent
    return result


def publish_failed(guard: CrashGuard, steps: Sequence[Step], exc: PublishFailed) -> list[str]:
    """Set the crash journal for an exit after publishing the batch of ``steps`` failed: records
    the broker refused as too large count as an attempt of the messages they answer (refused on
    every try, they would otherwise stop the worker on every restart); any other failure (an
    outage) counts for nothing, nor does anything else in flight. Returns where the messages
    counted are (``topic[partition]@offset``)."""
    refused = [r.source for r in exc.records if r.source is not None] if isinstance(exc, RecordsRefused) else []
    counted = guard.refusals(steps, refused)
    guard.abandon(counted)
    return [f"{topic}[{partition}]@{record.first}" for (topic, partition), record in sorted(counted.items())]


def log_outputs(result: BatchResult) -> None:
    """One line per output, naming the artwork and where its event came from."""
    for message, s in result.suggestions:
        log.info("artwork %s rev %d from %s: published %s (%d tags)", s.artwork_id,
                 s.revision, message.where, s.suggestion_id, len(s.suggestions))
    for message, d in result.dead_letters:
        log.warning("dead letter from %s (key %r): %s: %s", message.where,
                    message.key[:64] if message.key else None, d.error_type, d.error[:500])
    for skipped in result.skipped:
        log.info("artwork %s rev %d from %s: %s, no new suggestion", skipped.artwork_id,
                 skipped.revision, skipped.message.where, skipped.reason)
