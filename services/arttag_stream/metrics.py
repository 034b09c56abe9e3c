"""Prometheus metrics of the stream worker, in a registry of their own (tests build many)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    start_http_server,
)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class StreamMetrics:
    """Every metric the worker exports; ``serve(port)`` exposes them on ``/metrics``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events_in = Counter(
            "arttag_stream_events_in", "Artwork messages consumed", ["topic"], registry=r
        )
        self.suggestions_out = Counter(
            "arttag_stream_suggestions_out", "Suggestion events published", ["topic"], registry=r
        )
        self.dead_letters = Counter(
            "arttag_stream_dead_letters", "Messages sent to the dead-letter topic",
            ["error_type"], registry=r,
        )
        self.skipped = Counter(
            "arttag_stream_skipped", "Artwork revisions answered before (no new suggestion)",
            ["reason"], registry=r,
        )
        self.batch_size = Histogram(
            "arttag_stream_batch_size", "Messages per micro-batch",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512), registry=r,
        )
        self.encode_score_seconds = Histogram(
            "arttag_stream_encode_score_seconds", "Encoder + scorers time per micro-batch",
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.batch_seconds = Histogram(
            "arttag_stream_batch_seconds",
            "Micro-batch time from taking it to Kafka acknowledging its outputs",
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.event_latency_seconds = Histogram(
            "arttag_stream_event_latency_seconds",
            "From the artwork message's timestamp to its suggestion being acknowledged",
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.consumer_lag = Gauge(
            "arttag_stream_consumer_lag", "Messages behind the partition's end",
            ["topic", "partition"], registry=r,
        )
        self.state_artworks = Gauge(
            "arttag_stream_state_artworks", "Artworks in the per-artwork state", registry=r
        )

        self.encoder = Info(
            "arttag_stream_encoder",
            "The sentence encoder the worker runs: name, ONNX variant, provider and why that variant",
            registry=r,
        )

    def record_encoder(self, encoder: object) -> dict[str, str]:
        """Publish ``encoder``'s name and variant choice as ``arttag_stream_encoder_info``; returns the labels."""
        from arttag.encoders.loader import encoder_choice

        choice = encoder_choice(encoder)
        labels = {"name": str(getattr(encoder, "name", "none")), "variant": "none", "provider": "none",
                  "reason": "no-onnx-encoder"}
        if choice is not None:
            labels.update(variant=choice.variant, provider=choice.provider, reason=choice.reason)
        self.encoder.info(labels)
        return labels

    def serve(self, port: int) -> None:
        if port:
            start_http_server(port, registry=self.registry)
