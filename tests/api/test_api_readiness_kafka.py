"""/readyz against the real broker: not ready while the latest view cannot read its topic, ready once it can."""

from __future__ import annotations

import time

import pytest
from arttag.kafka.admin import create_topics
from arttag.settings import ApiSettings
from arttag_api.app import create_app
from fastapi.testclient import TestClient

pytestmark = pytest.mark.kafka


def _wait_for(client: TestClient, state: str, timeout_s: float = 60.0,
              followers: tuple[str, ...] = ("latest_view",)) -> dict:
    deadline = time.monotonic() + timeout_s
    body: dict = {}
    while time.monotonic() < deadline:
        body = client.get("/readyz").json()
        if all(body[f] == state for f in followers):
            return body
        time.sleep(0.2)
    raise AssertionError(f"{', '.join(followers)} never reached {state!r}: {body}")


def test_not_ready_while_the_latest_view_is_in_error(kafka_settings, tagger):
    settings = ApiSettings(kafka=kafka_settings, latest_view=True)  # its topics do not exist yet
    with TestClient(create_app(settings, tagger, broker_check=lambda: True)) as client:
        _wait_for(client, "error")
        r = client.get("/readyz")
        body = r.json()
        assert r.status_code == 503 and body["ready"] is False
        assert body["model_loaded"] is True and body["broker_reachable"] is True
        assert any("latest view" in d for d in body["detail"])
        # the stored suggestions cannot be read either: 503 with the cause, not a 404 that
        # says the view is still reading, and no topic name or broker code in the body
        r = client.get("/v1/artworks/T1/suggestions")
        problem = r.json()
        assert r.status_code == 503 and r.headers["Retry-After"], r.text
        assert "cannot read its topic" in problem["detail"] and "still reading" not in problem["detail"]
        assert kafka_settings.topic_prefix not in r.text and "tags.suggestions" not in r.text
        create_topics(kafka_settings)
        # the catalogue follower retries on its own clock: both must have read their topics
        _wait_for(client, "caught_up", followers=("latest_view", "catalogue"))
        r = client.get("/readyz")
        assert r.status_code == 200 and r.json()["ready"] is True
        r = client.get("/v1/artworks/T1/suggestions")
        assert r.status_code == 404 and "no suggestions published" in r.json()["detail"]
