"""The curation endpoints in-process: the artwork record, decisions (what each role sees), the
review queue's order and filters, public votes and registration, curator keys, and the
problems for bad input and wrong credentials. The curation database is filled by the real
fold (the curate processor without Kafka); feedback goes to an in-memory publisher."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from arttag.catalogue.vocabulary import Tag, Vocabulary
from arttag.curation.store import CurationStore
from arttag.events import ArtworkMetadata, AssignedTag, Explanation, TagSuggestion, TagSuggestionsPublished
from arttag.kafka.artworks import CatalogueRecord, LatestArtworks
from arttag.model.fake_tagger import FakeTagger
from arttag.settings import ApiSettings, CurateSettings
from arttag_api.app import create_app
from arttag_api.auth import hash_api_key
from arttag_api.curation import QUEUE_RULE, artwork_card, band_of
from arttag_api.latest_view import LatestSuggestionsView
from arttag_api.publisher import InMemoryFeedbackPublisher
from arttag_curate.processor import CurateProcessor
from fastapi.testclient import TestClient

from ..curation.helpers import curator, feedback

INTEGRATION = "integration-key"
CURATOR = "ann-curator-key"
TAGS = [Tag("t-sea", "sea", "nature"), Tag("t-boat", "boat", "transport"), Tag("t-dog", "dog", "animals"),
        Tag("t-tree", "tree", "nature"), Tag("t-hat", "hat", "objects")]


def _published(artwork_id: str, suggestions: dict[str, float], model_version: str = "m1",
               assigned: tuple[str, ...] = ()) -> TagSuggestionsPublished:
    answer = [TagSuggestion(tag_id=t, label=t.removeprefix("t-"), score=c, confidence=c, scorers=["s"],
                            already_assigned=t in assigned, explanation=Explanation(summary="s", contributions=[]))
              for t, c in suggestions.items()]
    return TagSuggestionsPublished(
        suggestion_id=TagSuggestionsPublished.make_id(artwork_id, 1, "h", model_version, answer), artwork_id=artwork_id,
        revision=1, content_hash="h", model_version=model_version, produced_at=datetime.now(UTC),
        suggestions=answer,
    )


def _record(artwork_id: str, title: str, group: str | None = None, tags: tuple[str, ...] = ()) -> CatalogueRecord:
    return CatalogueRecord(artwork_id=artwork_id, revision=2, produced_at=datetime.now(UTC), event_id=f"e-{artwork_id}",
                           artwork=ArtworkMetadata(title=title, group_title=group,
                                                   tags=[AssignedTag(id=t, label=t) for t in tags]))


# Q1: one tag two public votes into a k=3 consensus -> one vote away: first in the queue
# Q2 and Q3: only uncertain-band suggestions; Q3's sum is larger
# Q4: t-sea accepted by a curator, t-dog rejected by consensus: only t-hat (low band) is left
# Q5: everything decided: not in the queue; Q6: another model and group
SUGGESTED = {
    "Q1": ({"t-sea": 0.9, "t-boat": 0.2}, "m1"),
    "Q2": ({"t-sea": 0.5, "t-tree": 0.1}, "m1"),
    "Q3": ({"t-sea": 0.6, "t-boat": 0.55, "t-dog": 0.95}, "m1"),
    "Q4": ({"t-sea": 0.65, "t-dog": 0.4, "t-hat": 0.05}, "m1"),
    "Q5": ({"t-sea": 0.4}, "m1"),
    "Q6": ({"t-boat": 0.35}, "m2"),
}
FEEDBACK = [
    feedback("Q1", "t-sea", "accepted", "p1", 10), feedback("Q1", "t-sea", "accepted", "p2", 100),
    curator("Q4", "t-sea", "accepted", 200, who="cur-bob"),
    *(feedback("Q4", "t-dog", "rejected", f"p{i}", 300 + 10 * i) for i in range(3, 6)),
    curator("Q5", "t-sea", "rejected", 400),
    feedback("Q9", "t-hat", "accepted", "p1", 500),  # feedback on an artwork nothing else knows
]


@pytest.fixture
def store(tmp_path):
    store = CurationStore.open(f"sqlite:///{tmp_path / 'curation.db'}")
    processor = CurateProcessor(CurateSettings(), store)
    for event in FEEDBACK:
        processor.fold_event(event)
    processor.project()
    yield store
    store.close()


@pytest.fixture
def parts(store):
    view, catalogue = LatestSuggestionsView(), LatestArtworks()
    for artwork_id, (suggestions, version) in SUGGESTED.items():
        view.apply(_published(artwork_id, suggestions, version, assigned=("t-tree",) if artwork_id == "Q2" else ()))
    for artwork_id, title in [("Q1", "Harbour"), ("Q2", "Orchard"), ("Q3", "Sketchbook page 1"),
                              ("Q4", "Kennel"), ("Q5", "Beach")]:
        catalogue.merge(artwork_id, _record(artwork_id, title, group="Sketchbook A" if artwork_id in ("Q3", "Q4")
                                            else None, tags=("t-boat",) if artwork_id == "Q1" else ()))
    catalogue.merge("Q6", _record("Q6", "Other", group="Sketchbook B"))
    return {"view": view, "catalogue": catalogue, "publisher": InMemoryFeedbackPublisher(), "store": store}


def _settings(**kw) -> ApiSettings:
    return ApiSettings(api_key_hashes=[hash_api_key(INTEGRATION)], curators={"cur-ann": hash_api_key(CURATOR)},
                       latest_view=False, rate_limit_anonymous_per_s=0, rate_limit_keyed_per_s=0, **kw)


def _client(parts, **kw) -> TestClient:
    app = create_app(_settings(**kw), FakeTagger(vocabulary=Vocabulary(TAGS)), publisher=parts["publisher"],
                     view=parts["view"], catalogue=parts["catalogue"], store=parts["store"],
                     broker_check=lambda: True)
    return TestClient(app)


@pytest.fixture
def client(parts):
    with _client(parts) as c:
        yield c


def _problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and body["detail"]
    return body


def test_artwork_record_from_the_catalogue(client):
    r = client.get("/v1/artworks/Q3")
    assert r.status_code == 200, r.text
    assert r.json()["revision"] == 2 and r.json()["artwork"]["title"] == "Sketchbook page 1"
    assert r.json()["artwork"]["group_title"] == "Sketchbook A"
    assert "not in the catalogue" in _problem(client.get("/v1/artworks/NOPE"), 404)["detail"]


def test_decisions_show_status_provenance_and_votes_to_curators_only(client):
    r = client.get("/v1/artworks/Q4/decisions")
    assert r.status_code == 200, r.text
    dog, sea = r.json()["tags"]
    assert (sea["tag_id"], sea["status"], sea["decided_by"], sea["curator_id"], sea["label"], sea["group"]) == \
        ("t-sea", "accepted", "curator", "cur-bob", "sea", "nature")
    assert sea["decided_at"].startswith("2026-11-01T12:03:20")
    assert (dog["status"], dog["decided_by"], dog["curator_id"], dog["votes_against"], dog["votes_for"]) == \
        ("rejected", "consensus", None, 3, 0)
    assert dog["votes"] == []  # the public sees counts, not who

    seen = client.get("/v1/artworks/Q4/decisions", headers={"X-API-Key": CURATOR}).json()
    assert [(v["contributor_id"], v["vote"]) for v in seen["tags"][0]["votes"]] == \
        [("p3", "reject"), ("p4", "reject"), ("p5", "reject")]
    integration = client.get("/v1/artworks/Q4/decisions", headers={"X-API-Key": INTEGRATION}).json()
    assert integration["tags"][0]["votes"] == []

    [hat] = client.get("/v1/artworks/Q9/decisions").json()["tags"]  # known from feedback alone
    assert (hat["status"], hat["decided_by"], hat["votes_for"]) == ("proposed", None, 1)
    assert client.get("/v1/artworks/Q6/decisions").json() == {"artwork_id": "Q6", "tags": []}
    _problem(client.get("/v1/artworks/NOPE/decisions"), 404)
    _problem(client.get("/v1/artworks/Q4/decisions", headers={"X-API-Key": "made-up"}), 403)


def test_review_queue_order_follows_the_documented_rule(client):
    r = client.get("/v1/review/queue")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["rule"] == QUEUE_RULE
    order = [i["artwork_id"] for i in body["items"]]
    # Q1 first (one vote from consensus); then by the summed medium-band confidence:
    # Q3 0.6 + 0.55, Q2 0.5, Q6 0.35, Q4 0 (its medium tags are decided); Q5 is all decided
    assert order == ["Q1", "Q3", "Q2", "Q6", "Q4"] and body["total"] == 5
    q1, q3, q2 = body["items"][:3]
    assert (q1["near_consensus"], q1["undecided"], q1["top_confidence"], q1["title"]) == (1, 2, 0.9, "Harbour")
    assert q3["priority"] == pytest.approx(1.15) and q3["undecided"] == 3 and q3["group_title"] == "Sketchbook A"
    assert q2["undecided"] == 1  # t-tree is already assigned
    q4 = body["items"][4]
    assert (q4["undecided"], q4["top_confidence"], q4["priority"]) == (1, 0.05, 0.0)


def test_review_queue_filters_and_pages(client):
    def ids(**params):
        r = client.get("/v1/review/queue", params=params)
        assert r.status_code == 200, r.text
        return [i["artwork_id"] for i in r.json()["items"]], r.json()["total"]

    assert ids(group="Sketchbook A") == (["Q3", "Q4"], 2)
    assert ids(model_version="m2") == (["Q6"], 1)
    assert ids(band="high") == (["Q1", "Q3"], 2)
    assert ids(band="low") == (["Q1", "Q4"], 2)
    assert ids(band="medium") == (["Q3", "Q2", "Q6"], 3)
    assert ids(limit=2, offset=1) == (["Q3", "Q2"], 5)
    assert ids(offset=10) == ([], 5)
    for bad in ({"band": "huge"}, {"limit": 0}, {"limit": 101}, {"offset": -1}):
        assert _problem(client.get("/v1/review/queue", params=bad), 422)["errors"]
    assert [band_of(c) for c in (0.7, 0.69, 0.3, 0.29)] == ["high", "medium", "medium", "low"]


def test_public_contributor_registers_and_votes(client, parts):
    r = client.post("/v1/contributors")
    assert r.status_code == 201, r.text
    contributor_id, token = r.json()["contributor_id"], r.json()["token"]
    assert contributor_id.startswith("pub-") and len(token) >= 32
    assert parts["store"].contributor_for_token(token) is None  # only the digest is kept
    assert parts["store"].contributor_for_token(hash_api_key(token)) == contributor_id

    r = client.post("/v1/votes", headers={"X-Contributor-Token": token},
                    json={"artwork_id": "Q1", "tag_id": "t-sea", "vote": "accept", "suggestion_id": "s-1",
                          "model_version": "m1"})
    assert r.status_code == 202, r.text
    [event] = parts["publisher"].events
    assert r.json()["event_id"] == event.event_id and r.json()["status"] == "published"
    assert (event.actor.kind, event.actor.id, event.action, event.tag_label, event.suggestion_id) == \
        ("public", contributor_id, "accepted", "sea", "s-1")

    client.post("/v1/votes", headers={"X-Contributor-Token": token},
                json={"artwork_id": "Q1", "tag_id": "t-boat", "vote": "reject"})
    assert parts["publisher"].events[-1].action == "rejected"

    _problem(client.post("/v1/votes", json={"artwork_id": "Q1", "tag_id": "t-sea", "vote": "accept"}), 401)
    _problem(client.post("/v1/votes", headers={"X-Contributor-Token": "guessed"},
                         json={"artwork_id": "Q1", "tag_id": "t-sea", "vote": "accept"}), 403)
    # a curator's key is no contributor token
    _problem(client.post("/v1/votes", headers={"X-API-Key": CURATOR},
                         json={"artwork_id": "Q1", "tag_id": "t-sea", "vote": "accept"}), 401)
    for bad in ({"artwork_id": "Q1", "tag_id": "t-sea", "vote": "added"},
                {"artwork_id": "", "tag_id": "t-sea", "vote": "accept"},
                {"artwork_id": "Q1", "tag_id": "t-sea", "vote": "accept", "actor": {"kind": "curator", "id": "x"}}):
        assert _problem(client.post("/v1/votes", headers={"X-Contributor-Token": token}, json=bad), 422)["errors"]
    assert len(parts["publisher"].events) == 2  # nothing refused was published


def test_curator_key_decides_as_its_curator_and_the_public_may_not(client, parts):
    body = {"artwork_id": "Q3", "tag_id": "t-hat", "action": "added",
            "actor": {"kind": "curator", "id": "someone-else"}}
    r = client.post("/v1/feedback", headers={"X-API-Key": CURATOR}, json=body)
    assert r.status_code == 202, r.text
    event = parts["publisher"].events[-1]
    assert (event.actor.kind, event.actor.id, event.action, event.tag_label) == ("curator", "cur-ann", "added", "hat")
    r = client.post("/v1/feedback", headers={"X-API-Key": CURATOR},
                    json={"artwork_id": "Q3", "tag_id": "t-sea", "action": "rejected"})
    assert r.status_code == 202 and parts["publisher"].events[-1].actor.id == "cur-ann"

    # an integration names its actor; a public one may not add a tag
    integration = {"X-API-Key": INTEGRATION}
    assert "body.actor" in _problem(client.post("/v1/feedback", headers=integration,
                                                json={"artwork_id": "Q3", "tag_id": "t-sea", "action": "accepted"}),
                                    403)["detail"]
    assert "only curators add" in _problem(client.post("/v1/feedback", headers=integration, json={
        **body, "actor": {"kind": "public", "id": "pub-1"}}), 403)["detail"]
    r = client.post("/v1/feedback", headers=integration, json={**body, "actor": {"kind": "curator", "id": "kiosk"}})
    assert r.status_code == 202 and parts["publisher"].events[-1].actor.id == "kiosk"

    _problem(client.post("/v1/feedback", json=body), 401)
    _problem(client.post("/v1/feedback", headers={"X-API-Key": "wrong"}, json=body), 403)
    token = client.post("/v1/contributors").json()["token"]
    _problem(client.post("/v1/feedback", headers={"X-API-Key": token}, json=body), 403)
    assert len(parts["publisher"].events) == 3


def test_public_votes_off_hides_registration_and_voting(parts):
    with _client(parts, public_votes=False) as client:
        _problem(client.post("/v1/contributors"), 404)
        _problem(client.post("/v1/votes", headers={"X-Contributor-Token": "x"},
                             json={"artwork_id": "Q1", "tag_id": "t-sea", "vote": "accept"}), 404)
        assert client.get("/v1/artworks/Q1/decisions").status_code == 200


def test_private_reads_accept_curator_keys(parts):
    with _client(parts, public_reads=False) as client:
        _problem(client.get("/v1/review/queue"), 401)
        assert client.get("/v1/review/queue", headers={"X-API-Key": CURATOR}).status_code == 200
        assert client.get("/v1/artworks/Q1", headers={"X-API-Key": INTEGRATION}).status_code == 200


def test_curators_setting_takes_digests_only():
    with pytest.raises(ValueError, match="sha256 hex digest"):
        ApiSettings(curators={"cur-ann": CURATOR})
    assert ApiSettings(curators={"cur-ann": hash_api_key(CURATOR).upper()}).curators == \
        {"cur-ann": hash_api_key(CURATOR)}


def test_artwork_card_joins_metadata_suggestions_and_states(client):
    services = client.app.state.services
    card = artwork_card(services, "Q1", viewer=None)
    assert card.artwork.title == "Harbour" and card.model_version == "m1" and card.revision == 2
    sea, boat = card.tags
    assert (sea.tag_id, sea.status, sea.votes_for, sea.suggestion.confidence) == ("t-sea", "proposed", 2, 0.9)
    assert (boat.tag_id, boat.status, boat.assigned, boat.group) == ("t-boat", "proposed", True, "transport")
    q4 = artwork_card(services, "Q4", viewer=None)
    assert [(t.tag_id, t.status) for t in q4.tags] == [("t-sea", "accepted"), ("t-dog", "rejected"),
                                                       ("t-hat", "proposed")]
    q9 = artwork_card(services, "Q9", viewer=None)  # feedback only: no metadata, no suggestion
    assert q9.artwork is None and [(t.tag_id, t.suggestion) for t in q9.tags] == [("t-hat", None)]
    assert artwork_card(services, "NOPE", viewer=None) is None
