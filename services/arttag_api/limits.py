"""Request-level bounds: body bytes (a declared Content-Length and the streamed body), batch size,
and the text of all artworks in one request together.

The bounds of each field (title, description, ...) belong to the contract
``arttag.events.ArtworkMetadata`` and apply everywhere; the ones here bound what
one HTTP request may ask of the tagger.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from arttag.settings import ApiSettings
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from arttag_api.problems import send_problem

log = logging.getLogger(__name__)


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once the streamed body passes the limit.

    An HTTPException, because FastAPI turns any other error raised while it
    reads the body into a 400; this one passes through to the problem handler.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request bodies are limited to {limit} bytes")


class BodyLimitMiddleware:
    """Answers 413 before the app reads a body larger than ``max_body_bytes``.

    Content-Length alone is not enough: chunked requests carry none, and a
    client may lie, so the bytes actually received are counted as well.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await self._reject(scope, send)
            return

        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._reject(scope, send)

    async def _reject(self, scope: Scope, send: Send) -> None:
        log.info("rejected %s %s: body over %d bytes", scope.get("method"), scope.get("path"),
                 self.max_body_bytes)
        await send_problem(send, 413, "Request body too large",
                           f"request bodies are limited to {self.max_body_bytes} bytes",
                           instance=scope.get("path"), headers={"Connection": "close"})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def text_chars(value: Any) -> int:
    """Characters of text in a value: every string in it, keys of mappings excluded."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, BaseModel):
        return sum(text_chars(getattr(value, name)) for name in type(value).model_fields)
    if isinstance(value, dict):
        return sum(text_chars(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(text_chars(v) for v in value)
    return 0


def check_suggest_request(artworks: Sequence[BaseModel], settings: ApiSettings, field: tuple[str, ...]) -> None:
    """422 naming ``field`` when a request holds more artworks or more text than one request may.

    Refused here, before the tagger queue, so an oversized request costs no tagger
    time and delays nobody queued behind it.
    """
    if len(artworks) > settings.max_batch:
        _refuse(field, "too_long", f"at most {settings.max_batch} artworks per request, got {len(artworks)}")
    chars = sum(text_chars(a) for a in artworks)
    if chars > settings.max_request_text_chars:
        _refuse(field, "too_long", f"at most {settings.max_request_text_chars} characters of text per request "
                                   f"(all fields of all artworks together), got {chars}")


def _refuse(field: tuple[str, ...], kind: str, message: str) -> None:
    raise RequestValidationError([{"loc": field, "type": kind, "msg": message}])
