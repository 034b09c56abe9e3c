"""Schemathesis against the published OpenAPI: generated requests never get a 5xx or an off-spec answer."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from arttag.settings import ApiSettings
from arttag_api.app import create_app
from arttag_api.auth import hash_api_key
from arttag_api.latest_view import LatestSuggestionsView
from arttag_api.publisher import InMemoryFeedbackPublisher

KEY = "fuzz-key"
# the body limit is not in the spec: kept at its default so a large schema-valid batch is not a 413
SETTINGS = ApiSettings(api_key_hashes=[hash_api_key(KEY)], max_batch=8, max_body_bytes=1_000_000,
                       latest_view=False)

# The schema is loaded at import (schemathesis.pytest.from_fixture breaks on pytest 9), from an
# app whose tagger the fixture below plugs in: the spec does not depend on the tagger.
APP = create_app(SETTINGS, publisher=InMemoryFeedbackPublisher(), view=LatestSuggestionsView(),
                 broker_check=lambda: True)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module")
def api_tagger(bundle_tagger):
    APP.state.services.tagger = bundle_tagger
    return bundle_tagger


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi(case, api_tagger):
    case.call_and_validate(headers={"X-API-Key": KEY})
