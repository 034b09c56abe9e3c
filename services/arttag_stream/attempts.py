"""Crash-proof batches: a journal of the offsets in flight, so a message that kills the worker is
dead-lettered after ``max_attempts`` tries instead of crashing every restart.

Errors the processor can see become dead letters there. This module is for
those it cannot: a segfault or abort in native code, the kernel's OOM killer,
``kill -9``, a bug that escapes to the agent (which exits: crash-only). Before
a batch is processed, the worker records per (topic, partition) the offset
range in flight and how many times its processing has begun, in a small file
under the worker's data directory (atomic replace); the file is removed
once the batch is processed. A batch that meets a recorded range
after a restart is processed one message at a time, each with its own record,
so the next crash names the message; one whose processing began
``max_attempts`` times is dead-lettered as ``repeated-failure`` unprocessed.

Publishing failures (broker unavailable) are not the message's fault: a batch
leaves the journal once processed, before it is published, and a worker that exits
because publishing failed first takes what is still in flight out of the journal
(:meth:`CrashGuard.abandon`), so they never count. One publishing failure is the message's
fault: the broker refusing its output as too large (the topic's ``max.message.bytes`` below
``ARTTAG_MAX_RECORD_BYTES``), which repeats on every try; it counts as an attempt like a
crash (:meth:`CrashGuard.refusals`). docs/worker-robustness.md explains the choice and its costs.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from arttag_stream.processing import BatchProcessor, BatchResult, RawMessage

log = logging.getLogger(__name__)

TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class InFlight:
    """Offsets ``first``..``last`` of one partition whose processing began ``attempts`` times."""

    first: int
    last: int
    attempts: int

    def covers(self, offset: int) -> bool:
        return self.first <= offset <= self.last


@dataclass
class Step:
    """Messages processed (and published) together, and the journal records written before."""

    messages: list[RawMessage]
    records: dict[TopicPartition, InFlight]
    give_up: bool = False
    """The message reached the limit: dead-letter it instead of processing it."""
    started: bool = False
    """:meth:`CrashGuard.run` began processing it."""


class AttemptJournal:
    """One small JSON file per (topic, partition) under ``directory``: the batch in flight.

    Only the worker that owns a partition writes its file, so workers may share
    the directory.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def _path(self, tp: TopicPartition) -> Path:
        topic, partition = tp
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", topic)  # topic names are already this, mostly
        return self.directory / f"{safe}.{partition}.json"

    def read(self, tp: TopicPartition) -> InFlight | None:
        try:
            data = json.loads(self._path(tp).read_text())
            return InFlight(int(data["first"]), int(data["last"]), int(data["attempts"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("in-flight record %s unreadable, ignored: %s", self._path(tp), exc)
            return None

    def write(self, tp: TopicPartition, record: InFlight | None) -> None:
        """Replace the record atomically (``None`` removes it).

        Not fsynced: the crashes the journal counts (a segfault, the OOM killer, ``kill -9``)
        end the process, not the kernel, and what a process wrote stays in the page cache for
        the next one to read. Only a power cut can lose a record, which costs one extra
        attempt; the two fsyncs per partition would cost every batch several milliseconds."""
        path = self._path(tp)
        if record is None:
            path.unlink(missing_ok=True)
            return
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"first": record.first, "last": record.last, "attempts": record.attempts}))
        os.replace(tmp, path)


class CrashGuard:
    """Plans batches against the journal and runs them; ``max_attempts=0`` turns it off.

    Example (the worker's loop, simplified)::

        guard = CrashGuard(AttemptJournal(data_dir / "inflight"), 3, processor)
        for step in guard.plan(messages):
            result = guard.run(step)       # writes the journal, then processes
            guard.done(step)               # processed: no longer in flight
            ...                            # then the results are published

    (:func:`arttag_stream.pipeline.process_batch` is that loop.)
    """

    def __init__(self, journal: AttemptJournal | None, max_attempts: int,
                 processor: BatchProcessor) -> None:
        self.journal = journal if max_attempts > 0 else None
        self.max_attempts = max_attempts
        self.processor = processor
        # Steps begun and not done, oldest first: while the worker encodes the next batch
        # ahead, two steps of one partition are in flight and its record spans both.
        self._begun: list[Step] = []
        self._lock = threading.Lock()
        self._abandoned = False  # the worker is exiting: the journal is final

    def plan(self, messages: Sequence[RawMessage]) -> list[Step]:
        """One step for the batch; one step per message if part of it was in flight before."""
        if self.journal is None or not messages:
            return [Step(list(messages), {})]
        ranges: dict[TopicPartition, tuple[int, int]] = {}
        for m in messages:
            first, last = ranges.get((m.topic, m.partition), (m.offset, m.offset))
            ranges[(m.topic, m.partition)] = (min(first, m.offset), max(last, m.offset))
        known = {tp: self.journal.read(tp) for tp in ranges}
        seen_before = {tp for tp, rec in known.items()
                       if rec is not None and rec.first <= ranges[tp][1] and ranges[tp][0] <= rec.last}
        if not seen_before:
            return [Step(list(messages), {tp: InFlight(a, b, 1) for tp, (a, b) in ranges.items()})]
        log.warning("batch met offsets in flight before a crash (%s): one message at a time",
                    ", ".join(f"{t}[{p}]@{known[(t, p)].first}-{known[(t, p)].last} "  # type: ignore[union-attr]
                              f"x{known[(t, p)].attempts}" for t, p in sorted(seen_before)))
        steps = []
        for m in messages:
            tp = (m.topic, m.partition)
            before = known[tp]
            attempts = before.attempts if before is not None and before.covers(m.offset) else 0
            if attempts >= self.max_attempts:
                steps.append(Step([m], {tp: InFlight(m.offset, m.offset, attempts)}, give_up=True))
            else:
                steps.append(Step([m], {tp: InFlight(m.offset, m.offset, attempts + 1)}))
        return steps

    def run(self, step: Step) -> BatchResult:
        """Record the step in the journal, then process it (blocking: the tagger's thread)."""
        if step.give_up:
            [(tp, record)] = step.records.items()
            log.error("%s: processing began %d times without finishing; dead-lettering it",
                      step.messages[0].where, record.attempts)
            # Past the limit: its whole dead letter was refused as too large (see refusals).
            return self.processor.give_up(step.messages, record.attempts,
                                          keep_whole=record.attempts <= self.max_attempts)
        self.begin(step)
        step.started = True
        return self.processor.process(step.messages)

    def begin(self, step: Step) -> None:
        """Record the step in the journal (once): its processing has begun. Work done on a
        step before :meth:`run` (the worker's encoding ahead) begins it first, so a message
        that kills the process there is counted too."""
        if self.journal is None:
            return
        with self._lock:
            if self._abandoned or any(s is step for s in self._begun):
                return
            self._begun.append(step)
            self._write(step.records)

    def done(self, step: Step) -> None:
        """The step is processed: nothing of it is in flight any more."""
        self._leave(lambda s: s is step)

    def release_unstarted(self) -> None:
        """Leave out of the journal the steps begun but never run (encoded ahead, then the
        worker stopped): nothing crashed on them, so the restart must not count an attempt."""
        self._leave(lambda s: not s.started)

    def _leave(self, leaving: Callable[[Step], bool]) -> None:
        """Take the begun steps ``leaving`` picks out of the journal."""
        if self.journal is None:
            return
        with self._lock:
            if self._abandoned:
                return
            left = [s for s in self._begun if leaving(s)]
            self._begun = [s for s in self._begun if not leaving(s)]
            self._write({tp for s in left for tp in s.records})

    def refusals(self, steps: Sequence[Step], refused: Iterable[RawMessage]) -> dict[TopicPartition, InFlight]:
        """What to keep in the journal for messages whose outputs the broker refused as too large:
        per partition the earliest of them, with the attempt count it was processed under in
        ``steps``, so the restart processes its batch one message at a time and dead-letters it
        once refused ``max_attempts`` times. Only the earliest: a partition's record is one range,
        and a range over two refused messages would count the messages between them too; the
        next one is counted once the earliest is dead-lettered.

        A message refused while being given up (its whole dead letter too large for the
        dead-letter topic) is kept one past the limit: :meth:`run` then dead-letters it with
        only the original's first bytes."""
        if self.journal is None:
            return {}
        attempts: dict[tuple[str, int, int], int] = {}
        for step in steps:
            for m in step.messages:
                record = step.records.get((m.topic, m.partition))
                tried = record.attempts if record else 1
                attempts[(m.topic, m.partition, m.offset)] = tried + 1 if step.give_up else tried
        earliest: dict[TopicPartition, RawMessage] = {}
        for m in refused:
            tp = (m.topic, m.partition)
            if tp not in earliest or m.offset < earliest[tp].offset:
                earliest[tp] = m
        return {tp: InFlight(m.offset, m.offset, attempts.get((m.topic, m.partition, m.offset), 1))
                for tp, m in earliest.items()}

    def abandon(self, keep: Mapping[TopicPartition, InFlight] | None = None) -> None:
        """The worker is about to exit because publishing failed: nothing in flight crashed, so
        the journal keeps only ``keep`` (:meth:`refusals`) and is not written again (the tagger's
        and encoder's threads may still finish a step before the process ends)."""
        if self.journal is None:
            return
        keep = dict(keep or {})
        with self._lock:
            tps = {tp for s in self._begun for tp in s.records} | keep.keys()
            self._begun = []
            self._abandoned = True
            for tp in tps:
                self.journal.write(tp, keep.get(tp))

    def _write(self, tps: Iterable[TopicPartition]) -> None:
        """Each partition's record: the span of its steps in flight (none: removed)."""
        assert self.journal is not None
        for tp in tps:
            records = [s.records[tp] for s in self._begun if tp in s.records]
            self.journal.write(tp, InFlight(min(r.first for r in records), max(r.last for r in records),
                                            max(r.attempts for r in records)) if records else None)

