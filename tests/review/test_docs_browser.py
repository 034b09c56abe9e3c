"""The API docs pages in a real browser: they render, and every asset comes from the API itself."""

from __future__ import annotations

import re

import pytest
from arttag.model.fake_tagger import FakeTagger
from arttag.settings import ApiSettings
from arttag_api.app import create_app
from arttag_api.publisher import InMemoryFeedbackPublisher

from .conftest import Requests, serve

pytestmark = pytest.mark.browser


def test_docs_and_redoc_render_with_local_assets_only(browser):
    app = create_app(ApiSettings(latest_view=False), FakeTagger(), publisher=InMemoryFeedbackPublisher())
    with serve(app) as base:
        page = browser.new_page()
        requests = Requests(page, base)
        page.goto(f"{base}/docs")
        page.get_by_text("/v1/feedback").first.wait_for()  # Swagger UI rendered the spec
        page.goto(f"{base}/redoc")
        page.get_by_role("heading", name="Give feedback on a tag of an artwork").wait_for()  # so did ReDoc
        page.close()
    assert requests.external == [], requests.blocked
    assert any(u.endswith("/docs-assets/swagger-ui-bundle.js") for u in requests.urls)
    assert any(u.endswith("/docs-assets/redoc.standalone.js") for u in requests.urls)


def test_no_page_references_an_external_url():
    from fastapi.testclient import TestClient

    app = create_app(ApiSettings(latest_view=False), FakeTagger(), publisher=InMemoryFeedbackPublisher())
    with TestClient(app) as client:
        for path in ("/docs", "/redoc", "/review/sign-in", "/review/static/review.css", "/review/static/review.js"):
            text = client.get(path).text
            # any scheme-qualified or protocol-relative address in src/href/url()/@import
            found = re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?(?:https?:)?//|@import""",
                               text)
            assert found == [], (path, found)


def test_behind_a_path_prefix_the_docs_pages_ask_for_the_prefixed_spec_and_assets():
    from fastapi.testclient import TestClient

    app = create_app(ApiSettings(latest_view=False), FakeTagger(), publisher=InMemoryFeedbackPublisher())
    with TestClient(app, root_path="/arttag") as client:
        swagger, redoc = client.get("/docs").text, client.get("/redoc").text
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"):
        assert f"/arttag/docs-assets/{name}" in swagger, name
    assert "'/arttag/openapi.json'" in swagger and "'/arttag/docs/oauth2-redirect'" in swagger
    for name in ("redoc.standalone.js", "favicon.png"):
        assert f"/arttag/docs-assets/{name}" in redoc, name
    assert '"/arttag/openapi.json"' in redoc
