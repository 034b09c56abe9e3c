"""Prometheus metrics of the API: requests, latency, suggestions served, load shed, the latest view's size."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ApiMetrics:
    """One registry per app, so several apps (tests) never register a metric twice."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "arttag_api_requests", "HTTP requests", ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "arttag_api_request_duration_seconds", "HTTP request latency", ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.suggestions_served = Counter(
            "arttag_api_suggestions_served", "Tag suggestions returned to clients",
            registry=self.registry,
        )
        self.artworks_suggested = Counter(
            "arttag_api_artworks_suggested", "Artworks the tagger ran on for API requests",
            registry=self.registry,
        )
        self.tagger_batch_size = Histogram(
            "arttag_api_tagger_batch_size", "Artworks per tagger call",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=self.registry,
        )
        self.feedback_published = Counter(
            "arttag_api_feedback_published", "TagFeedbackGiven events published", ["action"],
            registry=self.registry,
        )
        self.tagger_queue_depth = Gauge(
            "arttag_api_tagger_queue_depth", "Artworks waiting for the tagger (ARTTAG_QUEUE_MAX_ARTWORKS bounds it)",
            registry=self.registry,
        )
        self.tagger_queue_rejections = Counter(
            "arttag_api_tagger_queue_rejections",
            "Suggest requests answered 503 by the tagger queue: full on arrival, or waited too long",
            ["reason"], registry=self.registry,
        )
        self.rate_limited = Counter(
            "arttag_api_rate_limited", "Requests answered 429, by client kind", ["client"],
            registry=self.registry,
        )
        for reason in ("full", "expired"):
            self.tagger_queue_rejections.labels(reason)
        for client in ("anonymous", "keyed"):
            self.rate_limited.labels(client)
        self.latest_view_artworks = Gauge(
            "arttag_api_latest_view_artworks", "Artworks in the latest-suggestions view",
            registry=self.registry,
        )


class MetricsMiddleware:
    """Counts and times every HTTP request by route template (not raw path: bounded labels)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - start)
