"""One batch, start to end: process it under the crash journal and publish it through a sink.

The worker (faust sink, in the tagger's thread) and ``arttag replay`` (confluent sink,
or the in-memory one for ``--dry-run``) both call :func:`tag_and_publish`, so the two
publish the same records in the same order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from arttag.kafka.sink import SuggestionSink

from arttag_stream.attempts import CrashGuard
from arttag_stream.processing import BatchResult, RawMessage

log = logging.getLogger(__name__)


def tag_and_publish(guard: CrashGuard, messages: Sequence[RawMessage], sink: SuggestionSink) -> BatchResult:
    """Plan, process and publish ``messages`` step by step; what all steps produced.

    Blocking (run it in the tagger's thread): each step's records are acknowledged by
    Kafka before its journal entry is cleared. When publishing fails the journal is put
    back as it was (a broker outage is not the messages' fault) and
    :class:`arttag.kafka.sink.PublishFailed` propagates: the caller exits without
    committing, so the batch is redone.
    """
    total = BatchResult()
    for step in guard.plan(messages):
        result = guard.run(step)
        try:
            sink.publish(result)
        except BaseException:
            guard.abandon(step)
            raise
        guard.done(step)
        total.extend(result)
    return total


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
