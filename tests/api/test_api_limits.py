"""Load shedding: rate limits (429), request bounds (413/422), the bounded tagger queue (503),
error bodies without internals, and /metrics, /docs and CORS as their settings say."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence

import httpx
import pytest
from arttag.errors import ModelError
from arttag.events import ArtworkMetadata, TagFeedbackGiven, TagSuggestion
from arttag.model.fake_tagger import FakeTagger
from arttag.model.tagger import SuggestOptions
from arttag.settings import ApiSettings
from arttag_api.app import create_app
from arttag_api.auth import hash_api_key
from arttag_api.batcher import QueueWaitExpired, SuggestBatcher
from arttag_api.latest_view import LatestSuggestionsView
from arttag_api.publisher import InMemoryFeedbackPublisher, PublishError
from arttag_api.ratelimit import TokenBuckets
from fastapi.testclient import TestClient
from pydantic import ValidationError

KEY = "limits-test-key"
LOCAL = ("127.0.0.1", 50000)
ARTWORK = {"title": "A Fishing Boat in Dieppe Harbour", "medium": "Watercolour on paper"}
SUGGEST = {"artwork": ARTWORK, "options": {"limit": 2}}


@pytest.fixture
def tagger() -> FakeTagger:
    """The library's fake: these tests are about what reaches the tagger, not what it answers."""
    return FakeTagger()


def _settings(**changes) -> ApiSettings:
    return ApiSettings(api_key_hashes=[hash_api_key(KEY)], latest_view=False, **changes)


def _app(settings: ApiSettings, tagger, publisher=None):  # noqa: ANN001, ANN202
    return create_app(settings, tagger, publisher=publisher or InMemoryFeedbackPublisher(),
                      view=LatestSuggestionsView(), broker_check=lambda: True)


def _is_problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["detail"]
    return body


def _retry_after(r: httpx.Response) -> int:
    value = int(r.headers["retry-after"])
    assert value >= 1
    return value


# --- rate limits --------------------------------------------------------------------------------

def test_token_buckets_refill_at_the_rate_up_to_the_burst():
    now = [0.0]
    buckets = TokenBuckets(rate_per_s=2.0, burst=3, max_clients=2, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [None, None, None]
    assert buckets.take("a") == pytest.approx(0.5)  # one token back in half a second at 2/s
    assert buckets.take("b") is None  # buckets are per client
    now[0] = 0.5
    assert buckets.take("a") is None and buckets.take("a") == pytest.approx(0.5)
    now[0] = 100.0  # a long pause refills to the burst, not beyond
    assert [buckets.take("a") for _ in range(4)][-1] is not None
    buckets.take("c")  # a third client: the least recently seen ("b") is forgotten
    assert len(buckets) == 2
    assert TokenBuckets(rate_per_s=0, burst=1).take("a") is None  # rate 0: no limit


def test_anonymous_client_gets_429_after_its_burst_while_a_keyed_client_passes(tagger):
    # refilling at 0.01/s: no token comes back while the test runs
    settings = _settings(rate_limit_anonymous_per_s=0.01, rate_limit_anonymous_burst=3,
                         rate_limit_keyed_per_s=0.01, rate_limit_keyed_burst=6)
    app = _app(settings, tagger)
    with TestClient(app, client=LOCAL) as anonymous:
        assert [anonymous.post("/v1/suggest", json=SUGGEST).status_code for _ in range(3)] == [200] * 3
        r = anonymous.post("/v1/suggest", json=SUGGEST)
        problem = _is_problem(r, 429)
        assert _retry_after(r) >= 50 and "per client address" in problem["detail"]
        # a made-up key buys nothing: it still spends the address's bucket
        assert anonymous.post("/v1/suggest", json=SUGGEST, headers={"X-API-Key": "guess"}).status_code == 429
        # the same address with an accepted key has the key's own bucket
        keyed = [anonymous.post("/v1/suggest", json=SUGGEST, headers={"X-API-Key": KEY}).status_code
                 for _ in range(6)]
        assert keyed == [200] * 6
        r = anonymous.post("/v1/suggest", json=SUGGEST, headers={"X-API-Key": KEY})
        assert "per API key" in _is_problem(r, 429)["detail"] and _retry_after(r)
        # probes, docs and metrics stay reachable for the limited client
        assert anonymous.get("/healthz").status_code == 200 and anonymous.get("/readyz").status_code == 200
        metrics = anonymous.get("/metrics").text
        assert 'arttag_api_rate_limited_total{client="anonymous"} 2.0' in metrics
        assert 'arttag_api_rate_limited_total{client="keyed"} 1.0' in metrics
    # another address has its own bucket
    assert TestClient(app, client=("10.0.0.8", 1)).post("/v1/suggest", json=SUGGEST).status_code == 200
    # IPv6 clients share a bucket per /64, which a single host usually holds
    first = TestClient(app, client=("2001:db8:1:2::1", 1))
    second = TestClient(app, client=("2001:db8:1:2::ffff", 1))
    assert [first.post("/v1/suggest", json=SUGGEST).status_code for _ in range(3)] == [200] * 3
    assert second.post("/v1/suggest", json=SUGGEST).status_code == 429


def test_rate_limit_refuses_before_the_body_is_read(tagger):
    settings = _settings(rate_limit_anonymous_per_s=0.01, rate_limit_anonymous_burst=1)
    with TestClient(_app(settings, tagger), client=LOCAL) as client:
        assert client.post("/v1/suggest", json=SUGGEST).status_code == 200
        tagger.calls.clear()
        # an invalid and oversized body: the 429 comes first, nothing is parsed or tagged
        r = client.post("/v1/suggest", content=b"{" * 2_000_000, headers={"content-type": "application/json"})
        assert r.status_code == 429 and tagger.calls == []


# --- request bounds -----------------------------------------------------------------------------

def test_request_bounds_are_413_and_422_naming_the_bound(tagger):
    settings = _settings(max_batch=4, max_body_bytes=20_000, max_request_text_chars=600)
    tagger.calls.clear()
    with TestClient(_app(settings, tagger), client=LOCAL) as client:
        r = client.post("/v1/suggest", json={"artwork": {"title": "x" * 30_000}})
        assert "20000 bytes" in _is_problem(r, 413)["detail"]

        r = client.post("/v1/suggest/batch", json={"artworks": [{"artwork": {"title": "x"}}] * 5})
        problem = _is_problem(r, 422)
        assert problem["errors"][0]["field"] == "body.artworks"
        assert "at most 4 artworks per request, got 5" in problem["errors"][0]["message"]

        # each field is short; together they are more text than one request may carry
        long_artwork = {"title": "t" * 100, "description": "d" * 300, "inscription": "i" * 300}
        r = client.post("/v1/suggest", json={"artwork": long_artwork})
        problem = _is_problem(r, 422)
        assert problem["errors"][0]["field"] == "body.artwork"
        assert "at most 600 characters of text per request" in problem["errors"][0]["message"]
        assert "got 700" in problem["detail"]

        items = [{"artwork": {"title": "w" * 200}}] * 4
        r = client.post("/v1/suggest/batch", json={"artworks": items})
        assert _is_problem(r, 422)["errors"][0]["field"] == "body.artworks"
        assert tagger.calls == []  # nothing refused reached the tagger

        # at the bound it passes
        r = client.post("/v1/suggest/batch", json={"artworks": [{"artwork": {"title": "w" * 150}}] * 4})
        assert r.status_code == 200 and tagger.calls == [4]


def test_oversized_requests_are_refused_up_front_so_a_normal_request_is_not_queued_behind_them(tagger):
    # issue #12: five anonymous requests with 900 KB titles delayed a normal request from 0.1 s
    # to 34 s; with the default settings they never reach the tagger queue
    tagger.calls.clear()
    with TestClient(_app(_settings(), tagger), client=LOCAL) as client:
        huge = {"artwork": {"title": "x" * 900_000}}
        for _ in range(5):
            r = client.post("/v1/suggest", json=huge)
            problem = _is_problem(r, 422)
            assert problem["errors"][0]["field"].startswith("body.artwork")
        assert tagger.calls == []
        assert client.post("/v1/suggest", json=SUGGEST).status_code == 200
        assert tagger.calls == [1]


# --- the bounded tagger queue ------------------------------------------------------------------

class GatedTagger:
    """A tagger that waits for ``release`` inside every call, so a test can fill the queue."""

    def __init__(self, tagger: FakeTagger) -> None:
        self._tagger = tagger
        self.entered = threading.Event()
        self.release = threading.Event()

    @property
    def model_version(self) -> str:
        return self._tagger.model_version

    @property
    def vocabulary(self):  # noqa: ANN201
        return self._tagger.vocabulary

    def suggest(self, artworks: Sequence[ArtworkMetadata],
                options: SuggestOptions | None = None) -> list[list[TagSuggestion]]:
        self.entered.set()
        self.release.wait(60)  # bounded only so that a broken test cannot hang the suite
        return self._tagger.suggest(artworks, options)


async def _until(predicate) -> None:  # noqa: ANN001
    async with asyncio.timeout(30):  # a safety net, not an assertion on time
        while not predicate():
            await asyncio.sleep(0.01)


def test_full_tagger_queue_is_503_with_retry_after_at_once(tagger):
    gated = GatedTagger(tagger)
    settings = _settings(max_batch=4, queue_max_artworks=2, queue_max_wait_s=0)
    app = _app(settings, gated)
    batcher = app.state.services.batcher

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app, client=LOCAL)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            running = asyncio.create_task(client.post("/v1/suggest", json=SUGGEST))
            await _until(gated.entered.is_set)  # the worker is busy with it
            queued = [asyncio.create_task(client.post("/v1/suggest", json=SUGGEST)) for _ in range(2)]
            await _until(lambda: batcher.queued == 2)  # the queue is full
            try:
                r = await client.post("/v1/suggest", json=SUGGEST)
                problem = _is_problem(r, 503)
                assert "busy" in problem["detail"] and "at most 2" in problem["detail"]
                _retry_after(r)
                r = await client.post("/v1/suggest/batch", json={"artworks": [{"artwork": ARTWORK}] * 2})
                _is_problem(r, 503)
                _retry_after(r)
                metrics = (await client.get("/metrics")).text
                assert "arttag_api_tagger_queue_depth 2.0" in metrics
                assert 'arttag_api_tagger_queue_rejections_total{reason="full"} 2.0' in metrics
            finally:
                gated.release.set()
            for r in [await running, *await asyncio.gather(*queued)]:
                assert r.status_code == 200, r.text
            metrics = (await client.get("/metrics")).text
            assert "arttag_api_tagger_queue_depth 0.0" in metrics

    try:
        asyncio.run(scenario())
    finally:
        gated.release.set()
        batcher.close()


def test_a_request_that_waited_longer_than_the_max_wait_is_dropped_unrun(tagger):
    gated = GatedTagger(tagger)
    rejected: list[str] = []
    batcher = SuggestBatcher(lambda: gated, max_batch=4, max_queued=10, max_wait_s=0.01,
                             on_reject=rejected.append)
    try:
        options = SuggestOptions(limit=1)
        first = batcher.submit([ArtworkMetadata(title="Boats")], options)
        assert gated.entered.wait(30)
        second = batcher.submit([ArtworkMetadata(title="Castle")], options)
        threading.Event().wait(0.05)  # longer than max_wait_s, while the worker is busy
        gated.release.set()
        assert len(first.result(30)) == 1
        with pytest.raises(QueueWaitExpired) as caught:
            second.result(30)
        assert caught.value.retry_after_s >= 1 and rejected == ["expired"]
    finally:
        gated.release.set()
        batcher.close()


def test_a_request_whose_client_gave_up_is_not_tagged(tagger):
    gated = GatedTagger(tagger)
    batcher = SuggestBatcher(lambda: gated, max_batch=4)
    try:
        options = SuggestOptions(limit=1)
        first = batcher.submit([ArtworkMetadata(title="Boats")], options)
        assert gated.entered.wait(30)
        tagger.calls.clear()
        gone = batcher.submit([ArtworkMetadata(title="Castle")], options)
        kept = batcher.submit([ArtworkMetadata(title="Hill")], options)
        assert gone.cancel()
        gated.release.set()
        assert len(first.result(30)) == 1 and len(kept.result(30)) == 1
        assert tagger.calls == [1, 1]  # the first call, then "Hill" alone
    finally:
        gated.release.set()
        batcher.close()


# --- error bodies -------------------------------------------------------------------------------

class BrokerDownPublisher:
    """Fails as ``KafkaFeedbackPublisher`` does when the broker times out."""

    topic = "museum1.tags.feedback.v1"

    def publish(self, event: TagFeedbackGiven) -> None:
        raise PublishError(f"Kafka refused feedback for artwork {event.artwork_id} on {self.topic}: "
                           "KafkaError{code=_MSG_TIMED_OUT,val=-192,str=\"Local: Message timed out\"}",
                           topic=self.topic)

    def close(self) -> None:
        pass


class BrokenTagger:
    model_version = "m"
    vocabulary = None

    def suggest(self, artworks, options=None):  # noqa: ANN001, ANN201
        raise ModelError("bundle /srv/models/current/knn.npz is corrupt", path="/srv/models/current")


def test_error_bodies_name_no_topic_broker_code_or_path(tagger, caplog):
    with TestClient(_app(_settings(), tagger, BrokerDownPublisher()), client=LOCAL) as client:
        body = {"artwork_id": "T1", "tag_id": "1050", "action": "accepted", "actor": {"kind": "curator", "id": "j"}}
        with caplog.at_level(logging.ERROR, logger="arttag_api"):
            r = client.post("/v1/feedback", json=body, headers={"X-API-Key": KEY})
        problem = _is_problem(r, 503)
        _retry_after(r)
        assert "feedback" in problem["detail"]
        for secret in ("tags.feedback", "museum1", "_MSG_TIMED_OUT", "-192", "Kafka"):
            assert secret not in r.text
        assert "museum1.tags.feedback.v1" in caplog.text and "_MSG_TIMED_OUT" in caplog.text

    with TestClient(_app(_settings(), BrokenTagger()), client=LOCAL) as client:
        r = client.post("/v1/suggest", json=SUGGEST)
        assert "/srv/models" not in _is_problem(r, 503)["detail"] and "/srv" not in r.text


# --- /metrics, /docs, CORS ----------------------------------------------------------------------

def test_metrics_answer_only_the_configured_networks(tagger):
    app = _app(_settings(), tagger)
    for address in ("127.0.0.1", "10.2.3.4", "192.168.1.9", "::1"):
        r = TestClient(app, client=(address, 1)).get("/metrics")
        assert r.status_code == 200 and "arttag_api_requests_total" in r.text, address
    for address in ("203.0.113.5", "2001:db8::1", "testclient"):
        r = TestClient(app, client=(address, 1)).get("/metrics")
        assert r.status_code == 404 and "arttag_api" not in r.text, address

    app = _app(_settings(metrics_networks=["203.0.113.0/24"]), tagger)
    assert TestClient(app, client=("203.0.113.5", 1)).get("/metrics").status_code == 200
    assert TestClient(app, client=LOCAL).get("/metrics").status_code == 404

    app = _app(_settings(metrics_enabled=False), tagger)
    client = TestClient(app, client=LOCAL)
    assert client.get("/metrics").status_code == 404
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_docs_follow_their_setting(tagger):
    client = TestClient(_app(_settings(), tagger), client=LOCAL)
    assert [client.get(p).status_code for p in ("/docs", "/redoc", "/openapi.json")] == [200] * 3
    spec = client.get("/openapi.json").json()
    assert "429" in spec["paths"]["/v1/suggest"]["post"]["responses"]
    assert "characters of text" in spec["components"]["schemas"]["SuggestBatchCreate"]["description"]

    client = TestClient(_app(_settings(docs_enabled=False), tagger), client=LOCAL)
    assert [client.get(p).status_code for p in ("/docs", "/redoc", "/openapi.json")] == [404] * 3
    assert client.post("/v1/suggest", json=SUGGEST).status_code == 200


ORIGIN = "https://collection.example.org"
PREFLIGHT = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "content-type,x-api-key"}


def test_cors_is_off_by_default_and_allows_only_the_listed_origins(tagger):
    client = TestClient(_app(_settings(), tagger), client=LOCAL)
    r = client.options("/v1/suggest", headers=PREFLIGHT)
    assert "access-control-allow-origin" not in r.headers
    r = client.post("/v1/suggest", json=SUGGEST, headers={"Origin": ORIGIN})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers

    settings = _settings(cors_origins=[ORIGIN], rate_limit_anonymous_per_s=0.01, rate_limit_anonymous_burst=1)
    client = TestClient(_app(settings, tagger), client=LOCAL)
    r = client.options("/v1/suggest", headers=PREFLIGHT)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ORIGIN
    assert "x-api-key" in r.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in r.headers
    r = client.options("/v1/suggest", headers={**PREFLIGHT, "Origin": "https://evil.example"})
    assert r.status_code == 400 and "access-control-allow-origin" not in r.headers
    assert client.post("/v1/suggest", json=SUGGEST, headers={"Origin": ORIGIN}).status_code == 200
    # a browser page can read the 429 and its Retry-After
    r = client.post("/v1/suggest", json=SUGGEST, headers={"Origin": ORIGIN})
    assert r.status_code == 429 and r.headers["access-control-allow-origin"] == ORIGIN
    assert "retry-after" in r.headers["access-control-expose-headers"].lower()


@pytest.mark.parametrize("changes", [
    {"cors_origins": ["*"]},
    {"cors_origins": ["https://collection.example.org/path"]},
    {"metrics_networks": ["not-a-network"]},
])
def test_unsafe_or_malformed_exposure_settings_are_refused(changes):
    with pytest.raises(ValidationError):
        ApiSettings(**changes)
