"""The curation loop on the real broker: a public vote and a curator's decision posted through
the API reach ``tags.decisions.v1`` through the real curate processor and show up in
``GET /v1/artworks/{id}/decisions``; the API reads the artwork topics into its catalogue."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime

import pytest
from arttag.curation.store import CurationStore
from arttag.events import (
    ArtworkCreated,
    ArtworkMetadata,
    Explanation,
    TagDecisionsChanged,
    TagSuggestion,
    TagSuggestionsPublished,
    encode_event,
)
from arttag.kafka import make_producer
from arttag.kafka.admin import create_topics
from arttag.kafka.clients import consumer, flush_or_fail, from_beginning, read_to_end
from arttag.kafka.topics import ARTWORKS_CREATED, TAG_DECISIONS, TAG_SUGGESTIONS_LATEST, topic_name
from arttag.model.fake_tagger import FakeTagger
from arttag.settings import ApiSettings, CurateSettings
from arttag_api.app import create_app
from arttag_api.auth import hash_api_key
from arttag_curate.processor import CurateProcessor
from fastapi.testclient import TestClient

pytestmark = pytest.mark.kafka

CURATOR = "curator-key"


def _wait(predicate, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s  # a bound on waiting, not an assertion on speed
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def _decisions(kafka) -> dict[str, TagDecisionsChanged]:
    reader = consumer(kafka)
    try:
        return {m.key().decode(): TagDecisionsChanged.model_validate_json(m.value())
                for records in read_to_end(reader, from_beginning(reader, topic_name(TAG_DECISIONS, kafka.topic_prefix)))
                for m in records}
    finally:
        reader.close()


def test_votes_and_a_curator_decision_through_the_api_reach_the_decisions(kafka_settings, tmp_path):
    create_topics(kafka_settings)
    prefix = kafka_settings.topic_prefix
    producer = make_producer(kafka_settings)
    producer.produce(topic_name(ARTWORKS_CREATED, prefix), key=b"K1", value=encode_event(ArtworkCreated(
        artwork_id="K1", revision=1, artwork=ArtworkMetadata(title="Boats at Dieppe", group_title="Sketchbook K"))))
    answer = [TagSuggestion(tag_id=t, label=t, score=c, confidence=c, scorers=["s"], already_assigned=False,
                            explanation=Explanation(summary="s", contributions=[]))
              for t, c in (("boat", 0.8), ("dog", 0.4))]
    suggestions = TagSuggestionsPublished(
        suggestion_id=TagSuggestionsPublished.make_id("K1", 1, "h", "m1", answer), artwork_id="K1", revision=1,
        content_hash="h", model_version="m1", produced_at=datetime.now(UTC), suggestions=answer)
    producer.produce(topic_name(TAG_SUGGESTIONS_LATEST, prefix), key=b"K1", value=encode_event(suggestions))
    flush_or_fail(producer)

    url = f"sqlite:///{tmp_path / 'curation.db'}"
    curate = CurateProcessor(CurateSettings(kafka=kafka_settings, curate_group=f"c-{uuid.uuid4().hex[:8]}",
                                            poll_s=0.2, consensus_min_contributors=2, consensus_min_margin=1.0,
                                            curation_database_url=url))
    stop = threading.Event()
    runner = threading.Thread(target=curate.run, kwargs={"stop": stop}, daemon=True)
    runner.start()
    settings = ApiSettings(kafka=kafka_settings, curators={"cur-ann": hash_api_key(CURATOR)},
                           curation_database_url=url, rate_limit_anonymous_per_s=0)
    try:
        with TestClient(create_app(settings, FakeTagger())) as client:
            ready = _wait(lambda: (r := client.get("/readyz").json())["catalogue"] == "caught_up"
                          and r["latest_view"] == "caught_up" and r)
            assert ready["ready"] and ready["catalogue_artworks"] == 1
            assert client.get("/v1/artworks/K1").json()["artwork"]["title"] == "Boats at Dieppe"
            queue = client.get("/v1/review/queue", params={"group": "Sketchbook K"}).json()
            assert [(i["artwork_id"], i["undecided"]) for i in queue["items"]] == [("K1", 2)]

            tokens = [client.post("/v1/contributors").json()["token"] for _ in range(2)]
            for token in tokens:
                r = client.post("/v1/votes", headers={"X-Contributor-Token": token},
                                json={"artwork_id": "K1", "tag_id": "dog", "vote": "reject",
                                      "suggestion_id": suggestions.suggestion_id, "model_version": "m1"})
                assert r.status_code == 202, r.text
            r = client.post("/v1/feedback", headers={"X-API-Key": CURATOR},
                            json={"artwork_id": "K1", "tag_id": "boat", "action": "accepted",
                                  "suggestion_id": suggestions.suggestion_id, "model_version": "m1"})
            assert r.status_code == 202, r.text
            curator_event = r.json()["event_id"]

            def decided():
                tags = {t["tag_id"]: t for t in client.get("/v1/artworks/K1/decisions").json()["tags"]}
                return len(tags) == 2 and all(t["status"] != "proposed" for t in tags.values()) and tags
            tags = _wait(decided)
            assert (tags["boat"]["status"], tags["boat"]["decided_by"], tags["boat"]["curator_id"],
                    tags["boat"]["model_version"]) == ("accepted", "curator", "cur-ann", "m1")
            assert (tags["dog"]["status"], tags["dog"]["decided_by"], tags["dog"]["votes_against"]) == \
                ("rejected", "consensus", 2)
            assert client.get("/v1/review/queue").json()["total"] == 0  # nothing left undecided

        record = _wait(lambda: (d := _decisions(kafka_settings).get("K1")) and len(d.accepted) == 1
                       and len(d.rejected) == 1 and d)
        assert record.accepted[0].event_id == curator_event and record.accepted[0].curator_id == "cur-ann"
        assert record.rejected[0].decided_by == "consensus" and len(record.rejected[0].contributors) == 2
        assert all(c.startswith("pub-") for c in record.rejected[0].contributors)
    finally:
        stop.set()
        runner.join(timeout=30)
    store = CurationStore.open(url)
    assert store.contributor(record.rejected[0].contributors[0]).votes == 1
    store.close()
