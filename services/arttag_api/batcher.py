"""Runs the tagger in one worker thread, merging requests that wait at the same time into one call.

Concurrent single-artwork requests would otherwise each run the encoder on one
text; here whatever is queued when the worker becomes free goes into one
``Tagger.suggest`` call (per distinct options), so the encoder batches. Nothing
waits for a batch to fill: at low load a request runs alone, at once.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

from arttag.events import ArtworkMetadata
from arttag.tagger import SuggestOptions, Tagger

log = logging.getLogger(__name__)


class ModelFuture(Future):
    """A job's result, and the version of the model that produced it (set before the result)."""

    model_version: str | None = None


@dataclass
class _Job:
    artworks: Sequence[ArtworkMetadata]
    options: SuggestOptions
    future: ModelFuture = field(default_factory=ModelFuture)


class SuggestBatcher:
    """Queue in, one tagger call per drained group out; results go back to each job's future."""

    def __init__(self, get_tagger: Callable[[], Tagger], max_batch: int = 64,
                 on_batch: Callable[[int], None] | None = None, single_threaded_math: bool = True) -> None:
        self._get_tagger = get_tagger
        self.max_batch = max_batch
        self._on_batch = on_batch
        self.single_threaded_math = single_threaded_math
        self._controller = None
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, artworks: Sequence[ArtworkMetadata], options: SuggestOptions) -> ModelFuture:
        self._ensure_started()
        job = _Job(list(artworks), options)
        self._queue.put(job)
        return job.future

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
            self._queue.put(None)
            self._thread.join(10.0)

    def _drain(self, first: _Job) -> tuple[list[_Job], bool]:
        jobs, size, stop = [first], len(first.artworks), False
        while size < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                stop = True
                break
            jobs.append(job)
            size += len(job.artworks)
        return jobs, stop

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
            first = self._queue.get()
            if first is None:
                return
            jobs, stop = self._drain(first)
            groups: dict[str, list[_Job]] = {}
            for job in jobs:
                groups.setdefault(job.options.model_dump_json(), []).append(job)
            for group in groups.values():
                self._run_group(group)
            if stop:
                return

    def _run_group(self, jobs: list[_Job]) -> None:
        artworks = [a for job in jobs for a in job.artworks]
        try:
            tagger = self._get_tagger()  # once: a hot swap never splits a call over two models
            with self._math_limits():
                results = tagger.suggest(artworks, jobs[0].options)
        except BaseException as exc:  # handed to the waiting requests, which answer with a problem
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        if self._on_batch:
            self._on_batch(len(artworks))
        start = 0
        for job in jobs:
            end = start + len(job.artworks)
            job.future.model_version = tagger.model_version
            job.future.set_result(results[start:end])
            start = end
