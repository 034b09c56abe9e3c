"""Schemathesis against the published OpenAPI: generated requests never get a 5xx or an off-spec answer."""

from __future__ import annotations

import threading

import pytest
import schemathesis
from arttag.curation.store import CurationStore
from arttag.kafka.artworks import LatestArtworks
from arttag.settings import ApiSettings
from arttag_api.app import create_app
from arttag_api.auth import hash_api_key
from arttag_api.latest_view import LatestSuggestionsView
from arttag_api.publisher import InMemoryFeedbackPublisher
from hypothesis import HealthCheck, settings

KEY = "fuzz-key"
# The body and request-text bounds are not in the spec (each field's limit is): raised here so
# a generated batch, valid or with over-long fields, reaches the validation the spec describes
# instead of a (documented, separately tested) 413 or request-level 422; no rate limit, so every
# request reaches its route instead of a 429.
SETTINGS = ApiSettings(api_key_hashes=[hash_api_key(KEY)], max_batch=8, max_body_bytes=64_000_000,
                       max_request_text_chars=10_000_000, latest_view=False,
                       rate_limit_keyed_per_s=0, rate_limit_anonymous_per_s=0)

# The schema is loaded at import (schemathesis.pytest.from_fixture breaks on pytest 9), from an
# app whose tagger the fixture below plugs in: the spec does not depend on the tagger.
# Loading the schema starts the app's lifespan, whose loader thread runs during collection.
# It must not import or compile anything then: CPython 3.11's AST validation keeps its recursion
# depth in shared state, so a thread compiling modules while pytest rewrites a test module's
# asserts fails collection with "AST constructor recursion depth mismatch". It only waits.
_FIXTURE_TAGGER: dict = {}
_FIXTURE_TAGGER_READY = threading.Event()


def _tagger_from_fixture(_settings):
    _FIXTURE_TAGGER_READY.wait()
    return _FIXTURE_TAGGER["tagger"]


APP = create_app(SETTINGS, publisher=InMemoryFeedbackPublisher(), view=LatestSuggestionsView(),
                 broker_check=lambda: True, tagger_loader=_tagger_from_fixture,
                 store=CurationStore.open("sqlite://"), catalogue=LatestArtworks())
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module")
def api_tagger(bundle_tagger):
    _FIXTURE_TAGGER["tagger"] = bundle_tagger
    _FIXTURE_TAGGER_READY.set()
    APP.state.services.tagger = bundle_tagger
    return bundle_tagger


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi(case, api_tagger):
    case.call_and_validate(headers={"X-API-Key": KEY})
