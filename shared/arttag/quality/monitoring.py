"""Live data-quality monitoring: Prometheus metrics comparing incoming artworks, suggestions and
feedback with the training data's reference profile.

The stream worker builds one :class:`DataQualityMonitor` per process and calls
it for every batch::

    from prometheus_client import CollectorRegistry
    from arttag.quality.monitoring import DataQualityMonitor, load_reference_profile

    monitor = DataQualityMonitor(registry, load_reference_profile(bundle_dir))
    monitor.observe_artworks([event.artwork for event in batch])       # list[ArtworkMetadata]
    monitor.observe_suggestions(suggestions)                           # list[list[TagSuggestion]]
    monitor.observe_feedback(feedback_event)                           # TagFeedbackGiven

The reference profile is computed from the training catalogue by
:func:`build_reference_profile` and saved as ``reference_profile.json`` in the
bundle folder (:func:`save_reference_profile`); without one the monitor still
counts, but exports no reference or drift gauges.

Metrics (all prefixed ``arttag_dq_``):

* ``artworks_total`` - artworks observed; ``field_absent_total{field}`` - those
  with the field missing or empty. ``field_absent_ratio{field}`` is the same share
  over the last ``window`` artworks, ``field_absent_reference_ratio{field}`` the
  training data's, and ``field_absent_drift{field}`` their difference (window - reference).
* ``text_length_chars`` - histogram of the model input text length;
  ``text_length_psi`` - population stability index of the window's text lengths
  against the reference (< 0.1 stable, 0.1-0.25 shifting, > 0.25 drifted).
* ``window_artworks`` - how many artworks the window gauges are computed from.
* ``top_confidence`` - histogram of each artwork's highest suggestion confidence;
  ``top_confidence_mean`` over the last ``window`` artworks (and
  ``top_confidence_reference_mean`` when the profile has one);
  ``suggestions_empty_total`` - artworks that got no suggestion at all.
* ``feedback_total{action}`` - feedback events by action (accepted, rejected, added);
  ``acceptance_ratio`` - accepted / (accepted + rejected) over the last ``window`` answers.
"""


from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from arttag.catalogue.text import build_text
from arttag.events import ArtworkMetadata, TagFeedbackGiven, TagSuggestion
from arttag.quality.audit.coverage import METADATA_FIELDS, absent_fields
from arttag.quality.profile import (
    CONFIDENCE_BUCKETS,
    REFERENCE_PROFILE_FILE,
    TEXT_LENGTH_BUCKETS,
    ReferenceProfile,
    bin_shares,
    build_reference_profile,
    load_reference_profile,
    save_reference_profile,
)

__all__ = [
    "CONFIDENCE_BUCKETS", "REFERENCE_PROFILE_FILE", "TEXT_LENGTH_BUCKETS", "DataQualityMonitor",
    "ReferenceProfile", "build_reference_profile", "load_reference_profile",
    "population_stability_index", "save_reference_profile",
]

def population_stability_index(expected: Sequence[float], actual: Sequence[float], eps: float = 1e-4) -> float:
    """PSI = sum((a - e) * ln(a / e)) over bins; empty bins are floored at ``eps``."""
    total = 0.0
    for e, a in zip(expected, actual):
        e, a = max(e, eps), max(a, eps)
        total += (a - e) * math.log(a / e)
    return total


class DataQualityMonitor:
    """Prometheus metrics on the quality of what the stream worker sees, against a reference profile.

    ``registry`` is where the metrics are registered (``None``: the process-wide
    default registry); build one monitor per registry. ``reference_profile`` may
    be ``None`` (no drift gauges). Window gauges are computed over the last
    ``window`` artworks (and feedback answers). All methods are thread-safe and
    never raise on odd input: an empty list is a no-op.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        reference_profile: ReferenceProfile | None = None,
        window: int = 1000,
    ) -> None:
        registry = REGISTRY if registry is None else registry
        self.reference = reference_profile
        self._lock = threading.Lock()
        self._absent: deque[frozenset[str]] = deque(maxlen=window)
        self._lengths: deque[int] = deque(maxlen=window)
        self._top: deque[float] = deque(maxlen=window)
        self._answers: deque[bool] = deque(maxlen=window)

        def metric(kind: Any, name: str, doc: str, **kwargs: Any) -> Any:
            return kind(f"arttag_dq_{name}", doc, registry=registry, **kwargs)

        self.artworks = metric(Counter, "artworks", "Artworks observed by the data-quality monitor")
        self.field_absent = metric(Counter, "field_absent", "Artworks whose field is missing or empty",
                                   labelnames=("field",))
        self.field_absent_ratio = metric(Gauge, "field_absent_ratio",
                                         "Share of the recent window's artworks whose field is missing or empty",
                                         labelnames=("field",))
        self.field_absent_reference = metric(Gauge, "field_absent_reference_ratio",
                                             "Share of training artworks whose field is missing or empty",
                                             labelnames=("field",))
        self.field_absent_drift = metric(Gauge, "field_absent_drift",
                                         "Recent window's absent share minus the training data's",
                                         labelnames=("field",))
        self.text_length = metric(Histogram, "text_length_chars", "Length of the model input text, in characters",
                                  buckets=TEXT_LENGTH_BUCKETS)
        self.text_length_psi = metric(Gauge, "text_length_psi",
                                      "Population stability index of recent text lengths against training")
        self.window_artworks = metric(Gauge, "window_artworks", "Artworks in the window the ratio gauges use")
        self.top_confidence = metric(Histogram, "top_confidence", "Highest suggestion confidence per artwork",
                                     buckets=CONFIDENCE_BUCKETS)
        self.top_confidence_mean = metric(Gauge, "top_confidence_mean",
                                          "Mean highest suggestion confidence over the recent window")
        self.top_confidence_reference = metric(Gauge, "top_confidence_reference_mean",
                                               "Mean highest suggestion confidence on held-out training data")
        self.suggestions_empty = metric(Counter, "suggestions_empty", "Artworks that got no suggestion")
        self.feedback = metric(Counter, "feedback", "Feedback events by action", labelnames=("action",))
        self.acceptance_ratio = metric(Gauge, "acceptance_ratio",
                                       "accepted / (accepted + rejected) over the recent feedback window")
        for name in METADATA_FIELDS:
            self.field_absent.labels(field=name)  # export zeros from the start, so rates exist
        for action in ("accepted", "rejected", "added"):
            self.feedback.labels(action=action)
        if reference_profile is not None:
            for name, share in reference_profile.field_absent.items():
                self.field_absent_reference.labels(field=name).set(share)
            if reference_profile.top_confidence_mean is not None:
                self.top_confidence_reference.set(reference_profile.top_confidence_mean)

    def observe_artworks(self, artworks: Sequence[ArtworkMetadata]) -> None:
        """Call with each batch of incoming artworks (before or after suggesting)."""
        if not artworks:
            return
        with self._lock:
            for meta in artworks:
                absent = frozenset(absent_fields(meta))
                length = len(build_text(meta))
                self.artworks.inc()
                for name in absent:
                    self.field_absent.labels(field=name).inc()
                self.text_length.observe(length)
                self._absent.append(absent)
                self._lengths.append(length)
            self._update_artwork_gauges()

    def _update_artwork_gauges(self) -> None:
        n = len(self._absent)
        self.window_artworks.set(n)
        for name in METADATA_FIELDS:
            share = sum(name in a for a in self._absent) / n
            self.field_absent_ratio.labels(field=name).set(share)
            if self.reference is not None and name in self.reference.field_absent:
                self.field_absent_drift.labels(field=name).set(share - self.reference.field_absent[name])
        if self.reference is not None:
            actual = bin_shares(list(self._lengths), self.reference.text_length_edges)
            self.text_length_psi.set(population_stability_index(self.reference.text_length_shares, actual))

    def observe_suggestions(self, suggestions: Sequence[Sequence[TagSuggestion]]) -> None:
        """Call with the tagger's output for a batch: one ranked list per artwork."""
        if not suggestions:
            return
        with self._lock:
            for ranked in suggestions:
                if not ranked:
                    self.suggestions_empty.inc()
                    continue
                top = max(s.confidence for s in ranked)
                self.top_confidence.observe(top)
                self._top.append(top)
            if self._top:
                self.top_confidence_mean.set(sum(self._top) / len(self._top))

    def observe_feedback(self, feedback: TagFeedbackGiven) -> None:
        """Call with each feedback event; ``added`` counts but is not an answer to a suggestion."""
        with self._lock:
            self.feedback.labels(action=feedback.action).inc()
            if feedback.action in ("accepted", "rejected"):
                self._answers.append(feedback.action == "accepted")
                self.acceptance_ratio.set(sum(self._answers) / len(self._answers))
