"""``/docs`` and ``/redoc`` with every asset served by the API itself (no CDN, no web fonts).

FastAPI's own pages load Swagger UI and ReDoc from a CDN, and ReDoc's also Google Fonts;
on a museum intranet without internet access they stay blank. The same pages are built here
from the script and style files that the ``fastapi-offline`` package ships, mounted at
``/docs-assets``.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs-assets"
# The browser enforces "nothing from elsewhere": ReDoc's bundle asks for its maker's logo from
# their CDN whatever the options, and this blocks it (the link text stays). Inline scripts and
# styles are FastAPI's page and the two UIs' own; blob: is ReDoc's search worker.
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' blob:; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data: blob:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
            "frame-ancestors 'none'; base-uri 'none'")
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"


def _local_only(response: HTMLResponse) -> HTMLResponse:
    response.headers["Content-Security-Policy"] = DOCS_CSP
    return response


def _rooted(request: Request, path: str) -> str:
    # behind a proxy that serves the API under a prefix, the browser needs the prefix too
    return f"{request.scope.get('root_path', '')}{path}"


def _asset(request: Request, name: str) -> str:
    return _rooted(request, f"{ASSETS_URL}/{name}")


def install_docs(app: FastAPI, *, openapi_url: str = "/openapi.json", docs_url: str = "/docs",
                 redoc_url: str = "/redoc") -> None:
    """Serve the docs pages; create the app with ``docs_url=None, redoc_url=None``."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
    oauth2_redirect = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return _local_only(get_swagger_ui_html(
            openapi_url=_rooted(request, openapi_url), title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=_rooted(request, oauth2_redirect),
            swagger_js_url=_asset(request, "swagger-ui-bundle.js"), swagger_css_url=_asset(request, "swagger-ui.css"),
            swagger_favicon_url=_asset(request, "favicon.png"),
            # the default validator badge fetches a remote image for every spec
            swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "validatorUrl": None},
        ))

    @app.get(oauth2_redirect, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(redoc_url, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        return _local_only(get_redoc_html(
            openapi_url=_rooted(request, openapi_url), title=f"{app.title} - ReDoc",
            redoc_js_url=_asset(request, "redoc.standalone.js"), redoc_favicon_url=_asset(request, "favicon.png"),
            with_google_fonts=False,
        ))
