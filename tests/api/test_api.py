"""The HTTP API in-process: suggestions, batch, latest view, feedback, auth, tags, limits, health."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from arttag.events import Explanation, TagSuggestion, TagSuggestionsPublished
from arttag.settings import ApiSettings
from arttag_api.app import create_app
from arttag_api.auth import hash_api_key, key_matches
from arttag_api.latest_view import LatestSuggestionsView
from arttag_api.publisher import InMemoryFeedbackPublisher

KEY = "s3cret-curator-key"


@pytest.fixture
def settings() -> ApiSettings:
    return ApiSettings(api_key_hashes=[hash_api_key(KEY)], max_batch=4, max_body_bytes=4000,
                       suggestion_limit=3, latest_view=False)


@pytest.fixture
def parts(fake_tagger):
    return {"tagger": fake_tagger, "publisher": InMemoryFeedbackPublisher(),
            "view": LatestSuggestionsView()}


def make_client(settings: ApiSettings, parts: dict, **kw) -> TestClient:
    app = create_app(settings, parts["tagger"], publisher=parts["publisher"], view=parts["view"],
                     broker_check=kw.pop("broker_check", lambda: True), **kw)
    return TestClient(app)


@pytest.fixture
def client(settings, parts) -> TestClient:
    with make_client(settings, parts) as c:
        yield c


ARTWORK = {"title": "Town on Hill with a Harbour", "artists": ["J.M.W. Turner"],
           "tags": [{"id": "2002", "label": "town"}]}


def test_suggest_ranks_tags_with_explanations(client):
    r = client.post("/v1/suggest", json={"artwork": ARTWORK, "options": {"limit": 10}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version"] == "fake-1"
    ids = [s["tag_id"] for s in body["suggestions"]]
    assert set(ids[:3]) == {"1050", "2001", "2002"}
    scores = [s["score"] for s in body["suggestions"]]
    assert scores == sorted(scores, reverse=True)
    first = body["suggestions"][0]
    assert first["explanation"]["summary"] and first["explanation"]["contributions"][0]["evidence"]
    town = next(s for s in body["suggestions"] if s["tag_id"] == "2002")
    assert town["already_assigned"] is True


def test_suggest_options_filter(client):
    r = client.post("/v1/suggest", json={"artwork": ARTWORK, "options": {
        "only_new": True, "min_confidence": 0.5, "exclude_groups": ["landscape"], "limit": 10}})
    assert [s["tag_id"] for s in r.json()["suggestions"]] == ["1050"]
    r = client.post("/v1/suggest", json={"artwork": ARTWORK, "options": {"include_tags": ["1051"]}})
    assert [s["tag_id"] for s in r.json()["suggestions"]] == ["1051"]


def test_suggest_uses_the_configured_limit_by_default(client):
    r = client.post("/v1/suggest", json={"artwork": ARTWORK})
    assert len(r.json()["suggestions"]) == 3


def test_batch_is_one_tagger_call_in_input_order(client, parts):
    items = [{"id": f"a{i}", "artwork": {"title": t}} for i, t in
             enumerate(["Fishing boats", "A hill", "Harbour at dusk"])]
    parts["tagger"].calls.clear()
    r = client.post("/v1/suggest/batch", json={"artworks": items, "options": {"limit": 1}})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["id"] for x in results] == ["a0", "a1", "a2"]
    assert [x["suggestions"][0]["tag_id"] for x in results] == ["1051", "2001", "1050"]
    assert parts["tagger"].calls == [3]


def test_batch_over_max_batch_is_422_naming_the_field(client):
    items = [{"artwork": {"title": "x"}}] * 5
    r = client.post("/v1/suggest/batch", json={"artworks": items})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["field"] == "body.artworks"


@pytest.mark.parametrize("payload, field", [
    ({"artwork": {"artists": []}}, "body.artwork.title"),
    ({"artwork": {"title": ""}}, "body.artwork.title"),
    ({"artwork": {"title": "x"}, "options": {"limit": 0}}, "body.options.limit"),
    ({"artwork": {"title": "x"}, "options": {"colour": "red"}}, "body.options.colour"),
    ({"artwork": {"title": "x", "year": "soon"}}, "body.artwork.year"),
])
def test_bad_input_is_422_problem_naming_the_field(client, payload, field):
    r = client.post("/v1/suggest", json=payload)
    assert r.status_code == 422
    problem = r.json()
    assert problem["status"] == 422 and field in [e["field"] for e in problem["errors"]]
    assert field in problem["detail"]


def test_malformed_json_is_422_not_500(client):
    r = client.post("/v1/suggest", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_oversized_body_is_413_by_content_length_and_by_streamed_size(client):
    big = {"artwork": {"title": "x" * 5000}}
    r = client.post("/v1/suggest", json=big)
    assert r.status_code == 413 and r.json()["status"] == 413

    def chunks():  # no Content-Length: only the received bytes can be counted
        for _ in range(10):
            yield b" " * 1000
    r = client.post("/v1/suggest", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("application/problem+json")


def _published(artwork_id: str, revision: int, tag: str, at: datetime | None = None) -> TagSuggestionsPublished:
    suggestion = TagSuggestion(tag_id=tag, label=tag, score=0.5, confidence=0.5, scorers=["fake"],
                               already_assigned=False, explanation=Explanation(summary="s", contributions=[]))
    return TagSuggestionsPublished(
        suggestion_id=TagSuggestionsPublished.make_id(artwork_id, revision, "m1"),
        artwork_id=artwork_id, revision=revision, content_hash="h", model_version="m1",
        produced_at=at or datetime.now(timezone.utc), suggestions=[suggestion],
    )


def test_latest_suggestions_newest_revision_wins(client, parts):
    view = parts["view"]
    assert client.get("/v1/artworks/T1/suggestions").status_code == 404
    now = datetime.now(timezone.utc)
    assert view.apply(_published("T1", 2, "1050", now))
    assert not view.apply(_published("T1", 1, "1051", now + timedelta(seconds=5)))  # an older revision replayed
    r = client.get("/v1/artworks/T1/suggestions")
    assert r.status_code == 200
    assert r.json()["revision"] == 2 and r.json()["suggestions"][0]["tag_id"] == "1050"
    view.delete("T1")
    assert client.get("/v1/artworks/T1/suggestions").status_code == 404


def test_feedback_needs_a_key(client, parts):
    body = {"artwork_id": "T1", "tag_id": "1050", "action": "accepted",
            "actor": {"kind": "curator", "id": "jsmith"}}
    assert client.post("/v1/feedback", json=body).status_code == 401
    r = client.post("/v1/feedback", json=body, headers={"X-API-Key": "wrong"})
    assert r.status_code == 403 and r.json()["title"] == "API key not accepted"
    assert parts["publisher"].events == []
    r = client.post("/v1/feedback", json=body, headers={"X-API-Key": KEY})
    assert r.status_code == 202, r.text
    [event] = parts["publisher"].events
    assert r.json()["event_id"] == event.event_id
    assert event.tag_label == "harbour" and event.action == "accepted" and event.actor.id == "jsmith"


def test_feedback_bad_action_is_422(client):
    body = {"artwork_id": "T1", "tag_id": "1050", "action": "liked", "actor": {"kind": "curator", "id": "x"}}
    r = client.post("/v1/feedback", json=body, headers={"X-API-Key": KEY})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.action"


def test_private_reads_need_a_key(settings, parts):
    with make_client(settings.model_copy(update={"public_reads": False}), parts) as c:
        assert c.post("/v1/suggest", json={"artwork": ARTWORK}).status_code == 401
        assert c.get("/v1/tags", params={"q": "bo"}, headers={"X-API-Key": "nope"}).status_code == 403
        assert c.post("/v1/suggest", json={"artwork": ARTWORK}, headers={"X-API-Key": KEY}).status_code == 200
        assert c.get("/healthz").status_code == 200


def test_key_comparison():
    hashes = [hash_api_key("a"), hash_api_key("b").upper()]
    assert key_matches("b", hashes) and not key_matches("c", hashes) and not key_matches("a", [])


def test_tag_search_and_lookup(client):
    r = client.get("/v1/tags", params={"q": "bo", "mode": "prefix"})
    assert [t["id"] for t in r.json()["tags"]] == ["1051", "1052"]
    r = client.get("/v1/tags", params={"q": "fishing", "mode": "both", "limit": 3})
    tags = r.json()["tags"]
    assert tags[0] == {"id": "1052", "label": "boats, fishing", "group": "ships and boats",
                       "area": "objects", "usage": 12, "match": "prefix", "score": None}
    assert [t["match"] for t in tags[1:]] == ["semantic", "semantic"]
    assert client.get("/v1/tags", params={"q": ""}).status_code == 422
    r = client.get("/v1/tags/2001")
    assert r.json() == {"id": "2001", "label": "hill", "group": "landscape", "area": "nature", "usage": 25}
    assert client.get("/v1/tags/9999").status_code == 404


def test_health_ready_and_metrics(settings, parts):
    with make_client(settings, parts) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz")
        assert ready.status_code == 200 and ready.json()["model_version"] == "fake-1"
        c.post("/v1/suggest", json={"artwork": ARTWORK})
        text = c.get("/metrics").text
        assert 'arttag_api_requests_total{method="POST",route="/v1/suggest",status="200"} 1.0' in text
        assert "arttag_api_request_duration_seconds_bucket" in text
        assert "arttag_api_suggestions_served_total 3.0" in text
    with make_client(settings, parts, broker_check=lambda: False) as c:
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["broker_reachable"] is False


def test_not_ready_while_the_model_is_missing(settings, parts, tmp_path):
    def failing_loader(s):
        raise FileNotFoundError(f"{tmp_path}/bundle")
    app = create_app(settings, None, publisher=parts["publisher"], view=parts["view"],
                     broker_check=lambda: True, tagger_loader=failing_loader)
    with TestClient(app) as c:
        r = c.post("/v1/suggest", json={"artwork": ARTWORK})
        assert r.status_code == 503 and "cannot load" in r.json()["detail"]
        assert c.get("/readyz").json()["model_loaded"] is False
