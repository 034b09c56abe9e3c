"""Errors as RFC 9457 problem JSON, so every client mistake gets a 4xx that names the field."""

from __future__ import annotations

import logging
from typing import Any

from arttag.errors import ArttagError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"


class FieldProblem(BaseModel):
    field: str = Field(description="Dotted location of the bad input, e.g. 'body.artwork.title'")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldProblem] = Field(default_factory=list)


def problem_response(
    status: int, title: str, detail: str | None = None, *, instance: str | None = None,
    errors: list[FieldProblem] | None = None, headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = Problem(title=title, status=status, detail=detail, instance=instance, errors=errors or [])
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=status,
        media_type=PROBLEM_MEDIA_TYPE, headers=headers,
    )


async def send_problem(send: Send, status: int, title: str, detail: str, *, instance: str | None = None,
                       headers: dict[str, str] | None = None) -> None:
    """The same problem document, sent from ASGI middleware that answers before the app runs."""
    body = Problem(title=title, status=status, detail=detail, instance=instance).model_dump_json(
        exclude_none=True).encode()
    raw = [(b"content-type", PROBLEM_MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries declaring problem JSON for these status codes."""
    descriptions = {
        400: "Malformed request", 401: "API key missing", 403: "API key not accepted",
        404: "Not found", 413: "Request body too large", 422: "Invalid input",
        429: "Rate limit reached; `Retry-After` says when to retry",
        502: "Kafka refused the event",
        503: "Not ready (model loading, Kafka unreachable) or busy (tagger queue full); "
             "`Retry-After` says when to retry",
    }
    return {
        s: {"model": Problem, "description": descriptions.get(s, "Problem"),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
        for s in statuses
    }


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(p) for p in loc) or "(root)"


async def _validation_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [FieldProblem(field=_field_name(e.get("loc", ())), message=str(e.get("msg", "invalid")))
              for e in exc.errors()]
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors)[:2000]
    return problem_response(422, "Invalid input", detail, instance=request.url.path, errors=errors)


async def _http_handler(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    title = {401: "API key missing", 403: "API key not accepted", 404: "Not found",
             405: "Method not allowed", 413: "Request body too large", 429: "Too many requests",
             503: "Service unavailable"}.get(exc.status_code, "Error")
    detail = exc.detail if isinstance(exc.detail, str) else None
    return problem_response(exc.status_code, title, detail, instance=request.url.path,
                            headers=getattr(exc, "headers", None))


async def _arttag_handler(request: Request, exc: ArttagError) -> JSONResponse:
    # An ArttagError reaching the edge is ours (model or broker), not the client's; its message
    # may name topics, paths or broker codes, so it goes to the log and the client gets the kind.
    log.error("%s %s failed: %s (%s)", request.method, request.url.path, exc, exc.context)
    return problem_response(503, "Service unavailable", "the service could not complete the request; "
                            "the error was logged", instance=request.url.path)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_handler)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_handler)  # type: ignore[arg-type]
    app.add_exception_handler(ArttagError, _arttag_handler)  # type: ignore[arg-type]
