"""The HTTP API in-process: suggestions, batch, latest view, feedback, auth, tags, limits, health."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from arttag.events import Explanation, TagSuggestion, TagSuggestionsPublished
from arttag.settings import ApiSettings
from arttag_api.app import create_app
from arttag_api.auth import hash_api_key, key_matches
from arttag_api.latest_view import LatestSuggestionsView
from arttag_api.publisher import InMemoryFeedbackPublisher
from fastapi.testclient import TestClient

KEY = "s3cret-curator-key"


@pytest.fixture
def settings() -> ApiSettings:
    return ApiSettings(api_key_hashes=[hash_api_key(KEY)], max_batch=4, max_body_bytes=4000,
                       suggestion_limit=3, latest_view=False)


@pytest.fixture
def parts(tagger):
    return {"tagger": tagger, "publisher": InMemoryFeedbackPublisher(), "view": LatestSuggestionsView()}


def make_client(settings: ApiSettings, parts: dict, client: tuple[str, int] = ("127.0.0.1", 50000),
                **kw) -> TestClient:
    app = create_app(settings, parts["tagger"], publisher=parts["publisher"], view=parts["view"],
                     broker_check=kw.pop("broker_check", lambda: True), **kw)
    return TestClient(app, client=client)


@pytest.fixture
def client(settings, parts) -> TestClient:
    with make_client(settings, parts) as c:
        yield c


ARTWORK = {"title": "A Fishing Boat in Dieppe Harbour", "artists": ["Joseph Mallord William Turner"],
           "medium": "Watercolour on paper", "year": 1826}


def _suggest(client, artwork=ARTWORK, **options) -> list[dict]:
    r = client.post("/v1/suggest", json={"artwork": artwork, "options": options})
    assert r.status_code == 200, r.text
    return r.json()["suggestions"]


def test_suggest_ranks_tags_with_explanations(client, tagger):
    r = client.post("/v1/suggest", json={"artwork": ARTWORK, "options": {"limit": 8}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version"] == tagger.model_version
    suggestions = body["suggestions"]
    assert 0 < len(suggestions) <= 8
    scores = [s["score"] for s in suggestions]
    assert scores == sorted(scores, reverse=True)
    for s in suggestions:
        assert s["label"] and 0.0 <= s["confidence"] <= 1.0 and s["scorers"]
        assert s["explanation"]["summary"] and s["explanation"]["contributions"]
    # the sample has boats and harbours: the words of the title should find one
    labels = " ".join(s["label"] for s in suggestions)
    assert "boat" in labels or "harbour" in labels or "fishing" in labels, labels


def test_suggest_options_filter(client):
    top = _suggest(client, limit=10)
    first = top[0]
    # only_new leaves out a tag the artwork already has; without it the tag is marked assigned
    tagged = {**ARTWORK, "tags": [{"id": first["tag_id"], "label": first["label"]}]}
    assert first["tag_id"] not in [s["tag_id"] for s in _suggest(client, tagged, limit=10, only_new=True)]
    again = {s["tag_id"]: s for s in _suggest(client, tagged, limit=10)}
    assert again.get(first["tag_id"], {"already_assigned": True})["already_assigned"] is True
    threshold = top[len(top) // 2]["confidence"]
    assert all(s["confidence"] >= threshold for s in _suggest(client, limit=10, min_confidence=threshold))
    assert first["group"] not in [s["group"] for s in _suggest(client, limit=10, exclude_groups=[first["group"]])]
    wanted = [s["tag_id"] for s in top[1:3]]
    assert {s["tag_id"] for s in _suggest(client, limit=10, include_tags=wanted)} <= set(wanted)
    assert first["tag_id"] not in [s["tag_id"] for s in _suggest(client, limit=10, exclude_tags=[first["tag_id"]])]


def test_suggest_uses_the_configured_limit_by_default(client):
    r = client.post("/v1/suggest", json={"artwork": ARTWORK})
    assert len(r.json()["suggestions"]) == 3


BATCH_TITLES = ["Fishing boats at sea", "A hill with a castle", "Portrait of a woman"]


def _batch(client) -> list[dict]:
    items = [{"id": f"a{i}", "artwork": {"title": t}} for i, t in enumerate(BATCH_TITLES)]
    r = client.post("/v1/suggest/batch", json={"artworks": items, "options": {"limit": 2}})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["id"] for x in results] == ["a0", "a1", "a2"]
    return results


def test_batch_answers_each_artwork_as_a_single_request_would(client):
    for title, result in zip(BATCH_TITLES, _batch(client)):
        single = _suggest(client, {"title": title}, limit=2)
        assert [s["tag_id"] for s in result["suggestions"]] == [s["tag_id"] for s in single]


def test_batch_is_one_tagger_call_in_input_order(settings, parts, fake_tagger):
    with make_client(settings, {**parts, "tagger": fake_tagger}) as client:
        results = _batch(client)
    assert fake_tagger.calls == [3]
    assert [[s["tag_id"] for s in x["suggestions"]] for x in results] == [["fishing"], ["a"], ["portrait"]]


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
    suggestion = TagSuggestion(tag_id=tag, label=tag, score=0.5, confidence=0.5, scorers=["knn"],
                               already_assigned=False, explanation=Explanation(summary="s", contributions=[]))
    return TagSuggestionsPublished(
        suggestion_id=TagSuggestionsPublished.make_id(artwork_id, revision, "h", "m1", [suggestion]),
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
    tag = parts["tagger"].vocabulary.tags[0]
    body = {"artwork_id": "T1", "tag_id": tag.id, "action": "accepted",
            "actor": {"kind": "curator", "id": "jsmith"}}
    assert client.post("/v1/feedback", json=body).status_code == 401
    r = client.post("/v1/feedback", json=body, headers={"X-API-Key": "wrong"})
    assert r.status_code == 403 and r.json()["title"] == "API key not accepted"
    assert parts["publisher"].events == []
    r = client.post("/v1/feedback", json=body, headers={"X-API-Key": KEY})
    assert r.status_code == 202, r.text
    [event] = parts["publisher"].events
    assert r.json()["event_id"] == event.event_id
    assert event.tag_label == tag.label and event.action == "accepted" and event.actor.id == "jsmith"


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


def test_tag_search_and_lookup(client, tagger):
    r = client.get("/v1/tags", params={"q": "boat", "mode": "prefix"})
    assert r.status_code == 200
    tags = r.json()["tags"]
    assert tags and all(t["match"] == "prefix" and "boat" in t["label"].lower() for t in tags)
    r = client.get("/v1/tags", params={"q": "sailing ships", "mode": "semantic", "limit": 5})
    tags = r.json()["tags"]
    assert len(tags) == 5 and all(t["match"] == "semantic" and t["score"] is not None for t in tags)
    r = client.get("/v1/tags", params={"q": "boat", "mode": "both", "limit": 50})
    matches = [t["match"] for t in r.json()["tags"]]
    assert matches == sorted(matches) and "semantic" in matches  # prefix hits first
    assert client.get("/v1/tags", params={"q": ""}).status_code == 422
    tag = max(tagger.vocabulary.tags, key=lambda t: t.usage)
    r = client.get(f"/v1/tags/{tag.id}")
    assert r.json() == {"id": tag.id, "label": tag.label, "group": tag.group, "area": tag.area,
                        "usage": tag.usage}
    assert tag.usage > 0 and tag.group
    assert client.get("/v1/tags/no-such-tag").status_code == 404


def test_health_ready_and_metrics(settings, parts):
    with make_client(settings, parts) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz")
        assert ready.status_code == 200 and ready.json()["model_version"] == parts["tagger"].model_version
        c.post("/v1/suggest", json={"artwork": ARTWORK})
        text = c.get("/metrics").text
        assert 'arttag_api_requests_total{method="POST",route="/v1/suggest",status="200"} 1.0' in text
        assert "arttag_api_request_duration_seconds_bucket" in text
        assert "arttag_api_suggestions_served_total 3.0" in text
        assert "arttag_api_tagger_batch_size_count 1.0" in text
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


def test_waiting_requests_share_one_tagger_call(fake_tagger):
    from arttag.events import ArtworkMetadata
    from arttag.model.tagger import SuggestOptions
    from arttag_api.batcher import SuggestBatcher

    batcher = SuggestBatcher(lambda: fake_tagger, max_batch=64)
    try:
        options = SuggestOptions(limit=2)
        big = batcher.submit([ArtworkMetadata(title=f"Study {i}") for i in range(16)], options)
        singles = [batcher.submit([ArtworkMetadata(title=t)], options) for t in ("Boats", "Castle", "Hill")]
        other = batcher.submit([ArtworkMetadata(title="Sea")], SuggestOptions(limit=1))
        assert len(big.result(60)) == 16 and all(len(f.result(60)) == 1 for f in singles)
        assert len(other.result(60)[0]) == 1
        # the singles queued while the big call ran and went in together; other options run apart
        assert sum(fake_tagger.calls) == 20 and len(fake_tagger.calls) <= 3
    finally:
        batcher.close()


def test_cli_api_command(monkeypatch, capsys):
    import io

    from arttag_cli.main import build_parser, main

    args = build_parser().parse_args(["api", "--host", "0.0.0.0", "--port", "8123"])
    assert (args.host, args.port, args.func.__name__) == ("0.0.0.0", 8123, "_serve")
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret\n"))
    assert main(["api", "hash-key"]) == 0
    assert capsys.readouterr().out.strip() == hash_api_key("s3cret")
