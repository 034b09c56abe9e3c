"""The review page without a browser: the queue filters reach the curation API's queue."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from arttag.catalogue.vocabulary import Tag

from arttag.events import Explanation, TagSuggestion, TagSuggestionsPublished
from arttag.model.fake_tagger import FakeTagger, TitleRule
from arttag.settings import ApiSettings
from arttag_api.app import create_app
from arttag_api.auth import hash_api_key
from arttag_api.latest_view import LatestSuggestionsView
from arttag_api.publisher import InMemoryFeedbackPublisher
from fastapi.testclient import TestClient


def _published(artwork_id: str, group: str, confidence: float) -> TagSuggestionsPublished:
    s = TagSuggestion(tag_id=f"t-{artwork_id}", label=f"tag of {artwork_id}", group=group, score=confidence,
                      confidence=confidence, scorers=["s"], already_assigned=False,
                      explanation=Explanation(summary="s", contributions=[]))
    return TagSuggestionsPublished(suggestion_id=f"{artwork_id}:1:h:m1", artwork_id=artwork_id, revision=1,
                                   content_hash="h", model_version="m1", produced_at=datetime.now(UTC),
                                   suggestions=[s])


def test_the_queue_filters_by_tag_group_band_and_model_version(tmp_path):
    view = LatestSuggestionsView()
    for event in (_published("A1", "places", 0.9), _published("A2", "nature", 0.5)):
        view.apply(event)
    settings = ApiSettings(latest_view=False, catalogue_view=False,
                           curation_database_url=f"sqlite:///{tmp_path / 'c.db'}")
    app = create_app(settings, FakeTagger(), view=view, publisher=InMemoryFeedbackPublisher())
    with TestClient(app) as client:
        def listed(query: str) -> list[str]:
            page = client.get(f"/review{query}").text
            return [a for a in ("A1", "A2") if f'href="/review/artworks/{a}' in page]

        assert listed("") == ["A1", "A2"] or listed("") == ["A2", "A1"]
        assert listed("?tag_group=places") == ["A1"]
        assert listed("?band=medium") == ["A2"]
        assert listed("?model_version=m2") == []
        page = client.get("/review?tag_group=nature")
        assert page.status_code == 200 and "tag of A2" in page.text  # the first listed artwork's card
        assert client.get("/review/artworks/nope").status_code == 404


def test_every_form_post_checks_the_csrf_token_before_it_acts(tmp_path):
    view = LatestSuggestionsView()
    view.apply(_published("A1", "places", 0.9))
    publisher = InMemoryFeedbackPublisher()
    settings = ApiSettings(latest_view=False, catalogue_view=False, curators={"jsmith": hash_api_key("k")},
                           review_undo_window_s=0, curation_database_url=f"sqlite:///{tmp_path / 'c.db'}")
    tagger = FakeTagger([TitleRule("Sea", Tag("t-A1", "tag of A1", "places"))])
    app = create_app(settings, tagger, view=view, publisher=publisher)
    with TestClient(app, follow_redirects=False) as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/review/sign-in").text).group(1)
        posts = [("/review/sign-in", {"key": "k"}), ("/review/artworks/A1/feedback",
                                                      {"action": "accepted", "tag_id": "t-A1"}),
                 ("/review/undo", {}), ("/review/sign-out", {})]
        for url, form in posts:
            for refused in ({}, {"csrf_token": "forged"}):
                answer = client.post(url, data={**form, **refused})
                assert answer.status_code == 403 and "This form has expired" in answer.text, url
        # sign-in takes the token from the form only; the desk's fetches may send it as a header
        assert client.post("/review/sign-in", data={"key": "k"}, headers={"X-CSRF-Token": token}).status_code == 403
        signed_in = client.post("/review/sign-in", data={"key": "k", "csrf_token": token})
        assert signed_in.status_code == 303 and not publisher.events
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/review").text).group(1)
        given = client.post("/review/artworks/A1/feedback", data={"action": "accepted", "tag_id": "t-A1"},
                            headers={"X-CSRF-Token": token})
        assert given.status_code == 303 and "done=accepted" in given.headers["location"]
        assert client.post("/review/sign-out", data={"csrf_token": token}).status_code == 303
        assert [(e.artwork_id, e.tag_id, e.action) for e in publisher.events] == [("A1", "t-A1", "accepted")]
