"""Browser-test fixtures: Debian's chromium driven by Playwright, an app served by uvicorn on a
real port, and axe-core (installed by ``npm ci``) injected into pages.

With ``CI`` set a missing browser or axe-core fails the tests; elsewhere they are skipped
with the command that installs them.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("ARTTAG_TEST_CHROMIUM", "/usr/bin/chromium"))
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"


def _missing(what: str, how: str) -> None:
    message = f"{what} is missing ({how})"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


# module scope: Playwright's sync API keeps an event loop running in the main thread while it
# is open, which makes later tests' asyncio.run() fail; it closes with each browser test module
@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        _missing(f"the browser {CHROMIUM}", "apt-get install chromium chromium-driver")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # Debian's build, never a downloaded one (no `playwright install`)
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE.exists():
        _missing("axe-core", "npm ci in the repository root")
    return AXE.read_text(encoding="utf-8")


def serious_violations(page, axe_source: str) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now, one line each."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source)  # through the debugger: the page's CSP allows no injected script tag
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(app) -> Iterator[str]:
    """``app`` served by uvicorn on a free port in a thread, lifespan included; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60  # a bound on waiting, not an assertion on speed
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


class Requests:
    """Every URL a page asked for, to show that nothing is fetched from elsewhere."""

    def __init__(self, page, base: str) -> None:
        self.base = base
        self.urls: list[str] = []
        self.blocked: list[str] = []  # refused by the page's Content-Security-Policy: never sent
        page.on("request", lambda r: self.urls.append(r.url))
        page.on("requestfailed", lambda r: self.blocked.append(r.url) if "csp" in (r.failure or "").lower() else None)

    @property
    def external(self) -> list[str]:
        local = (self.base + "/", "blob:" + self.base + "/", "data:")
        return [u for u in self.urls if not u.startswith(local) and u not in self.blocked]
