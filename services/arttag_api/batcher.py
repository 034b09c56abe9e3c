"""Runs the tagger in one worker thread, merging requests that wait at the same time into one call.

Concurrent single-artwork requests would otherwise each run the encoder on one
text; here whatever is queued when the worker becomes free goes into one
``Tagger.suggest`` call (per distinct options), so the encoder batches. Nothing
waits for a batch to fill: at low load a request runs alone, at once.

The queue is bounded in artworks: a request that would overfill it is refused at
once (``QueueFull``, the API's 503), and one that waited longer than ``max_wait_s``
is dropped unrun (``QueueWaitExpired``), so overload costs clients a quick retry
instead of a latency that grows without bound.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

from arttag.errors import ArttagError
from arttag.events import ArtworkMetadata
from arttag.model.tagger import SuggestOptions, Tagger

log = logging.getLogger(__name__)


class TaggerBusy(ArttagError):
    """The tagger's queue cannot take the request now; ``retry_after_s`` estimates when it can."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message, retry_after_s=retry_after_s)
        self.retry_after_s = retry_after_s


class QueueFull(TaggerBusy):
    """Refused on arrival: the queue holds as many artworks as it may."""


class QueueWaitExpired(TaggerBusy):
    """Dropped unrun: it waited for the tagger longer than the queue's ``max_wait_s``."""


class ModelFuture(Future):
    """A job's result, and the version of the model that produced it (set before the result)."""

    model_version: str | None = None


@dataclass
class _Job:
    artworks: Sequence[ArtworkMetadata]
    options: SuggestOptions
    future: ModelFuture = field(default_factory=ModelFuture)
    queued_at: float = field(default_factory=time.monotonic)


class SuggestBatcher:
    """Queue in, one tagger call per drained group out; results go back to each job's future.

    ``max_queued`` bounds the artworks waiting (not those being tagged); a request
    larger than the bound is still taken when nothing waits, so every batch the
    API accepts can run. ``max_wait_s=0`` lets requests wait however long.
    ``on_reject(reason)`` is told of each refusal: ``"full"`` or ``"expired"``.
    """

    def __init__(self, get_tagger: Callable[[], Tagger], max_batch: int = 64,
                 on_batch: Callable[[int], None] | None = None, single_threaded_math: bool = True,
                 *, max_queued: int = 1_000_000, max_wait_s: float = 0.0,
                 on_reject: Callable[[str], None] | None = None) -> None:
        self._get_tagger = get_tagger
        self.max_batch = max_batch
        self.max_queued = max_queued
        self.max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._on_reject = on_reject
        self.single_threaded_math = single_threaded_math
        self._controller = None
        self._jobs: deque[_Job | None] = deque()
        self._queued = 0
        self._ready = threading.Condition()
        # seconds per artwork, smoothed over recent calls: what Retry-After is estimated from
        self._s_per_artwork = 0.05
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    @property
    def queued(self) -> int:
        """Artworks waiting for the tagger (the ones being tagged not counted)."""
        return self._queued

    def submit(self, artworks: Sequence[ArtworkMetadata], options: SuggestOptions) -> ModelFuture:
        """The future of the suggestions, one list per artwork; raises ``QueueFull`` when refused."""
        self._ensure_started()
        job = _Job(list(artworks), options)
        with self._ready:
            if self._queued and self._queued + len(job.artworks) > self.max_queued:
                queued = self._queued
                retry = self._retry_after(queued)
                self._reject("full")
                raise QueueFull(f"the tagger is busy ({queued} artworks waiting, at most {self.max_queued}); "
                                f"retry in {retry} s", retry)
            self._jobs.append(job)
            self._queued += len(job.artworks)
            self._ready.notify()
        return job.future

    def _retry_after(self, queued: int) -> int:
        return min(60, max(1, math.ceil(queued * self._s_per_artwork)))

    def _reject(self, reason: str) -> None:
        if self._on_reject:
            self._on_reject(reason)

    def _ensure_started(self) -> None:
        # started lazily: test clients may never run the app's lifespan
        if self._thread is not None and self._thread.is_alive():
            return
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="suggest-batcher", daemon=True)
                self._thread.start()

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            with self._ready:
                self._jobs.append(None)
                self._ready.notify()
            self._thread.join(10.0)

    def _next_jobs(self) -> tuple[list[_Job], bool]:
        """Blocks for the first job, then takes what else waits, up to ``max_batch`` artworks."""
        with self._ready:
            while not self._jobs:
                self._ready.wait()
            jobs: list[_Job] = []
            size = 0
            while self._jobs:
                head = self._jobs[0]
                if head is None:
                    self._jobs.popleft()
                    return jobs, True
                if jobs and size + len(head.artworks) > self.max_batch:
                    break
                self._jobs.popleft()
                self._queued -= len(head.artworks)
                jobs.append(head)
                size += len(head.artworks)
        return jobs, False

    def _live(self, jobs: list[_Job]) -> list[_Job]:
        """Leaves out jobs whose client stopped waiting, and fails those that waited too long."""
        now = time.monotonic()
        live = []
        for job in jobs:
            # False when the client stopped waiting (cancelled); from here on it cannot cancel
            if not job.future.set_running_or_notify_cancel():
                continue
            waited = now - job.queued_at
            if self.max_wait_s > 0 and waited > self.max_wait_s:
                self._reject("expired")
                retry = self._retry_after(self._queued)
                job.future.set_exception(QueueWaitExpired(
                    f"the tagger is busy: the request waited {waited:.1f} s, "
                    f"at most {self.max_wait_s:g} s; retry in {retry} s", retry))
                continue
            live.append(job)
        return live

    def _math_limits(self) -> AbstractContextManager:
        """One OpenMP/BLAS thread during a tagger call.

        The re-ranker (scikit-learn's gradient boosting, OpenMP) and numpy (OpenBLAS)
        would otherwise spread each small request over every core, and their
        spin-waiting threads collapse when the CPUs are shared: on 2 loaded cores,
        1.5-3.5 s per single-artwork call instead of 20-50 ms.
        The encoder (onnxruntime) keeps its own thread pool.
        """
        if not self.single_threaded_math:
            return nullcontext()
        if self._controller is None:
            from threadpoolctl import ThreadpoolController

            self._controller = ThreadpoolController()
        return self._controller.limit(limits=1)

    def _run(self) -> None:
        while True:
            jobs, stop = self._next_jobs()
            try:
                groups: dict[str, list[_Job]] = {}
                for job in self._live(jobs):
                    groups.setdefault(job.options.model_dump_json(), []).append(job)
                for group in groups.values():
                    self._run_group(group)
            except Exception as exc:  # a request must never wait on a worker that stopped serving it
                log.exception("suggest batcher failed on %d jobs", len(jobs))
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
            if stop:
                return

    def _run_group(self, jobs: list[_Job]) -> None:
        artworks = [a for job in jobs for a in job.artworks]
        started = time.monotonic()
        try:
            tagger = self._get_tagger()  # once: a hot swap never splits a call over two models
            with self._math_limits():
                results = tagger.suggest(artworks, jobs[0].options)
        except BaseException as exc:  # handed to the waiting requests, which answer with a problem
            for job in jobs:
                job.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        elapsed = time.monotonic() - started
        self._s_per_artwork = 0.8 * self._s_per_artwork + 0.2 * elapsed / max(1, len(artworks))
        if self._on_batch:
            self._on_batch(len(artworks))
        start = 0
        for job in jobs:
            end = start + len(job.artworks)
            job.future.model_version = tagger.model_version
            job.future.set_result(results[start:end])
            start = end

