"""One batch, start to end: process it under the crash journal and publish it through a sink.

The worker (faust sink, in the tagger's thread) and ``arttag replay`` (confluent sink,
or the in-memory one for ``--dry-run``) both call :func:`tag_and_publish`, so the two
publish the same records in the same order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from arttag.kafka.sink import SuggestionSink

from arttag_stream.attempts import CrashGuard
from arttag_stream.processing import BatchResult, RawMessage

log = logging.getLogger(__name__)


def process_batch(guard: CrashGuard, messages: Sequence[RawMessage]) -> BatchResult:
    """Plan and process ``messages`` step by step (blocking: the tagger's thread); what the
    steps produced, to be published.

    Each step is in the crash journal while it is processed and leaves it when processed:
    a crash while publishing (a broker outage, a kill) is not the messages' fault, so it
    never counts as an attempt; the offsets are not committed either way, so the batch is
    processed again after a restart.
    """
    total = BatchResult()
    started = time.perf_counter()
    for step in guard.plan(messages):
        result = guard.run(step)
        guard.done(step)
        total.extend(result)
    total.journal_s = time.perf_counter() - started - total.process_s
    return total


def tag_and_publish(guard: CrashGuard, messages: Sequence[RawMessage], sink: SuggestionSink) -> BatchResult:
    """:func:`process_batch`, then publish through ``sink`` (blocking: every record is
    acknowledged when it returns). ``arttag replay`` publishes this way; the worker
    publishes a batch while it tags the next (:mod:`arttag_stream.app`). When publishing
    fails :class:`arttag.kafka.sink.PublishFailed` propagates: the caller exits without
    committing, so the batch is redone.
    """
    result = process_batch(guard, messages)
    sent = time.perf_counter()
    sink.publish(result)
    result.publish_s = time.perf_counter() - sent
    return result


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
