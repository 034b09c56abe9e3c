"""Per-client token buckets: one per API key, one per address for anonymous requests; 429 when empty."""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from arttag.settings import ApiSettings
from starlette.types import ASGIApp, Receive, Scope, Send

from arttag_api.auth import API_KEY_HEADER, hash_api_key, key_matches
from arttag_api.metrics import ApiMetrics
from arttag_api.problems import send_problem

log = logging.getLogger(__name__)

LIMITED_PREFIX = "/v1/"
"""Only the API proper is limited: probes, metrics and docs stay reachable under load."""


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """``take(client)`` spends one token of that client's bucket or says how long until one is back.

    Each bucket holds at most ``burst`` tokens and refills at ``rate_per_s``. Buckets
    live in memory, per process, and at most ``max_clients`` of them: the least
    recently seen client is forgotten first (it starts again with a full bucket).
    """

    def __init__(self, rate_per_s: float, burst: int, max_clients: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, client: str) -> float | None:
        """None when the request may pass, else the seconds until the next token."""
        if self.rate_per_s <= 0:
            return None
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = self._buckets[client] = _Bucket(float(self.burst), now)
            if len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(client)
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate_per_s)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / self.rate_per_s

    def __len__(self) -> int:
        return len(self._buckets)


def client_address(scope: Scope) -> str | None:
    """The peer's address as the server saw it (uvicorn puts a trusted proxy's X-Forwarded-For here)."""
    client = scope.get("client")
    return client[0] if client else None


def _anonymous_identity(address: str | None) -> str:
    if address is None:
        return "addr:unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"addr:{address}"
    if ip.version == 6:
        # one IPv6 host usually holds a whole /64: per-address buckets would be free to multiply
        return f"net:{ipaddress.ip_network(f'{ip}/64', strict=False)}"
    return f"addr:{ip}"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


class RateLimitMiddleware:
    """Answers 429 with ``Retry-After`` before the app reads the body of a request over its limit.

    A request with an accepted API key spends from that key's bucket; any other
    request (no key, or a key that is not accepted) from its address's bucket, so
    made-up keys buy nothing.
    """

    def __init__(self, app: ASGIApp, settings: ApiSettings, metrics: ApiMetrics,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.hashes = [*settings.api_key_hashes, *settings.curators.values()]
        self.keyed = TokenBuckets(settings.rate_limit_keyed_per_s, settings.rate_limit_keyed_burst,
                                  settings.rate_limit_max_clients, clock)
        self.anonymous = TokenBuckets(settings.rate_limit_anonymous_per_s, settings.rate_limit_anonymous_burst,
                                      settings.rate_limit_max_clients, clock)
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(LIMITED_PREFIX):
            await self.app(scope, receive, send)
            return
        key = _header(scope, API_KEY_HEADER.lower().encode())
        if key and key_matches(key, self.hashes):
            kind, buckets, identity = "keyed", self.keyed, "key:" + hash_api_key(key)
        else:
            kind, buckets, identity = "anonymous", self.anonymous, _anonymous_identity(client_address(scope))
        wait_s = buckets.take(identity)
        if wait_s is None:
            await self.app(scope, receive, send)
            return
        self.metrics.rate_limited.labels(kind).inc()
        retry_after = max(1, math.ceil(wait_s))
        # the key's digest, not the key, goes into the log
        log.info("rate limited %s %s from %s", scope.get("method"), scope.get("path"), identity[:20])
        limit = (f"{buckets.burst} requests at once, then {buckets.rate_per_s:g} per second "
                 f"per {'API key' if kind == 'keyed' else 'client address without an API key'}")
        await send_problem(send, 429, "Too many requests", f"rate limit: {limit}; retry in {retry_after} s",
                           instance=scope.get("path"), headers={"Retry-After": str(retry_after)})
