"""The review desk at ``/review``: server-rendered pages, every action a plain form post.

Routes stay thin: sessions and CSRF in :mod:`.sessions`, held actions in :mod:`.undo`, the
curation service layer behind :mod:`.desk`, the card in :mod:`.cards`. JavaScript
(``static/review.js``) only adds keyboard shortcuts, focus restoring and the tag
autocomplete; without it every control still works.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from arttag.events import FeedbackActor
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from arttag_api.deps import Services
from arttag_api.ratelimit import TokenBuckets, client_address
from arttag_api.web import desk
from arttag_api.web.sessions import CSRF_FIELD, CSRF_HEADER, Session, SessionCodec, csrf_ok, curator_for_key, session_secret
from arttag_api.web.undo import UndoBuffer

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
QUEUE_PAGE = 25
BANDS = [("", "Any confidence"), ("high", "High (70% or more)"), ("medium", "Medium (30-70%)"),
         ("low", "Low (under 30%)")]
SHORTCUTS = [("j", "Next suggestion"), ("k", "Previous suggestion"), ("a", "Accept (or vote yes on) the suggestion"),
             ("r", "Reject (or vote no on) the suggestion"), ("u", "Undo your last action"),
             ("n", "Next artwork in the queue"), ("p", "Previous artwork in the queue"),
             ("/", "Add a tag (curators)"), ("?", "Show these shortcuts")]
DONE = {"accepted": "You accepted", "rejected": "You rejected", "added": "You added",
        "voted-yes": "You voted yes on", "voted-no": "You voted no on"}

templates = Jinja2Templates(directory=str(HERE / "templates"))


@dataclass
class ReviewDesk:
    """The desk's state in the app: session codec, held actions, sign-in rate limit."""

    services: Services
    sessions: SessionCodec
    undo: UndoBuffer
    attempts: TokenBuckets

    def start(self) -> None:
        self.undo.start()

    def stop(self) -> None:
        self.undo.stop()


def _desk(request: Request) -> ReviewDesk:
    return request.app.state.review_desk


def _session(request: Request) -> tuple[Session, bool]:
    """The request's session, and whether it is new (its cookie must be written)."""
    found = _desk(request).sessions.read(request)
    return (found, False) if found is not None else (Session.anonymous(), True)


def _safe_return(value: str | None, fallback: str = "/review") -> str:
    # only a path under /review: a posted return address must not send anyone elsewhere
    if not value:
        return fallback
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/review") or "\\" in value:
        return fallback
    return value


def _render(request: Request, template: str, session: Session, context: dict[str, Any],
            status: int = 200) -> HTMLResponse:
    desk_ = _desk(request)
    settings = desk_.services.settings
    response = templates.TemplateResponse(request, template, {
        "session": session, "csrf_field": CSRF_FIELD, "public_votes": settings.public_votes,
        "shortcuts": SHORTCUTS, **context,
    }, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    desk_.sessions.write(response, session, request)
    return response


def _redirect(request: Request, to: str, session: Session | None = None) -> RedirectResponse:
    response = RedirectResponse(to, status_code=303)
    if session is not None:
        _desk(request).sessions.write(response, session, request)
    return response


def _error(request: Request, session: Session, title: str, message: str, status: int) -> HTMLResponse:
    return _render(request, "error.html", session, {"title": title, "message": message}, status=status)


class _Refused(Exception):
    """Ends a form post before its handler runs; the app answers with ``response``."""

    def __init__(self, response: Response) -> None:
        super().__init__()
        self.response = response


@dataclass(frozen=True)
class Posted:
    """A form post that passed the CSRF check: the desk, the sender's session, the form's text fields."""

    desk: ReviewDesk
    session: Session
    form: dict[str, str]


class _PostedForm:
    """The dependency every form post starts with: session, form, CSRF check (refused with a 403 page)."""

    def __init__(self, *, header: bool) -> None:
        # review.js may post with the token in a header; sign-in and sign-out take it from the form only
        self.header = header

    async def __call__(self, request: Request) -> Posted:
        session, _ = _session(request)
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        token = form.get(CSRF_FIELD) or (request.headers.get(CSRF_HEADER) if self.header else None)
        if not csrf_ok(session, token):
            raise _Refused(_error(request, session, "This form has expired",
                                  "The form was not sent from this page or it is too old. Go back, reload the "
                                  "page and try again.", 403))
        return Posted(_desk(request), session, form)


PostedForm = Annotated[Posted, Depends(_PostedForm(header=True))]
PostedFormOnly = Annotated[Posted, Depends(_PostedForm(header=False))]


def _filters(request: Request) -> desk.Filters:
    q = request.query_params
    try:
        offset = max(0, int(q.get("offset") or 0))
    except ValueError:
        offset = 0
    band = q.get("band") or None
    return desk.Filters(group=q.get("tag_group") or None, band=band if band in ("high", "medium", "low") else None,
                        model_version=q.get("model_version") or None, offset=offset)


router = APIRouter(prefix="/review", include_in_schema=False)


async def _page(request: Request, artwork_id: str | None, *, error: str | None = None,
                status: int = 200, add_value: str = "") -> HTMLResponse:
    services = _desk(request).services
    session, _ = _session(request)
    filters = _filters(request)
    queue = await run_in_threadpool(desk.queue, services, filters, QUEUE_PAGE)
    items = list(queue.items)
    if artwork_id is None and items:
        artwork_id = items[0].artwork_id
    held = _desk(request).undo.held(session.actor) if session.actor is not None else None
    card = None
    if artwork_id is not None:
        card = await run_in_threadpool(desk.card, services, artwork_id, session.actor,
                                       held.event if held is not None and held.event.artwork_id == artwork_id
                                       else None)
    ids = [i.artwork_id for i in items]
    at = ids.index(artwork_id) if artwork_id in ids else -1
    link = lambda i: f"/review/artworks/{ids[i]}{filters.query()}"  # noqa: E731
    nav = {
        "next": link(at + 1) if at + 1 < len(ids) else (link(0) if at == -1 and ids else None),
        "previous": link(at - 1) if at > 0 else None,
    }
    groups = sorted({t.group for t in services.vocabulary} if services.vocabulary is not None else set())
    done = request.query_params.get("done")
    held_note = None
    if held is not None:
        held_note = {"event": held.event, "seconds": round(_desk(request).undo.remaining_s(held))}
    return _render(request, "review.html", session, {
        "title": card.title if card else "Review queue", "queue": queue, "items": items, "card": card,
        "artwork_id": artwork_id, "filters": filters, "bands": BANDS, "groups": groups, "nav": nav,
        "done": DONE.get(done or "") if done != "undone" else None, "undone": done == "undone",
        "too_late": done == "too-late", "held": held_note, "error": error, "add_value": add_value,
        "return_to": str(request.url.path) + (("?" + request.url.query) if request.url.query else ""),
        "not_found": artwork_id is not None and card is None,
    }, status=404 if artwork_id is not None and card is None and status == 200 else status)


@router.get("", response_class=HTMLResponse)
async def review(request: Request) -> HTMLResponse:
    return await _page(request, None)


@router.get("/artworks/{artwork_id}", response_class=HTMLResponse)
async def review_artwork(request: Request, artwork_id: str) -> HTMLResponse:
    return await _page(request, artwork_id)


@router.post("/artworks/{artwork_id}/feedback", response_model=None)
async def give_feedback(request: Request, artwork_id: str, posted: PostedForm) -> Response:
    desk_, session, form = posted.desk, posted.session, posted.form
    services = desk_.services
    back = _safe_return(form.get("return_to"), f"/review/artworks/{artwork_id}")
    action = form.get("action", "")
    tag_id = (form.get("tag_id") or "").strip()
    if action == "added" and not tag_id:
        tag_id = _resolve_tag(services, form.get("tag", ""))
        if not tag_id:
            words = form.get("tag", "").strip()
            message = (f"There is no tag called \u201c{words}\u201d. Type a few letters and pick a tag from the list."
                       if words else "Type the name of the tag to add.")
            return await _page(request, artwork_id, error=message, status=422, add_value=words)
    if session.actor is None:
        if not services.settings.public_votes:
            return _error(request, session, "Sign in to review",
                          "Public voting is off here; curators sign in first.", 403)
        if desk_.attempts.take(f"join:{client_address(request.scope)}") is not None:
            return _error(request, session, "Too many new contributors",
                          "Too many contributors joined from this address just now. Wait a minute and try again.",
                          429)
        contributor_id, token = await run_in_threadpool(desk.register, services)
        session = Session(kind="public", actor_id=contributor_id, contributor_token=token, csrf=session.csrf)
    assert session.actor is not None
    try:
        await run_in_threadpool(desk.give_feedback, services, desk_.undo, session.actor, artwork_id=artwork_id,
                                tag_id=tag_id, action=action, suggestion_id=form.get("suggestion_id"),
                                model_version=form.get("model_version"))
    except desk.DeskError as exc:
        title = "Not saved yet" if exc.status == 503 else "That cannot be done"
        return _error(request, session, title, exc.message, exc.status)
    done = action if session.is_curator else ("voted-yes" if action == "accepted" else "voted-no")
    return _redirect(request, _with_done(back, done, form.get("next_anchor")), session)


def _with_done(back: str, done: str, anchor: str | None) -> str:
    """``back`` with ``done=<what happened>`` (the page says it) and the suggestion to focus next."""
    parts = urlsplit(back)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "done"] + [("done", done)]
    fragment = anchor if anchor and re.fullmatch(r"[so]\d{1,4}", anchor) else ""
    return urlunsplit(("", "", parts.path, urlencode(query), fragment))


def _resolve_tag(services: Services, words: str) -> str | None:
    """A typed tag: its id, or a label matched exactly (any case), or the only prefix match."""
    vocabulary = services.vocabulary
    words = words.strip()
    if vocabulary is None or not words:
        return None
    if vocabulary.get(words) is not None:
        return words
    hits = vocabulary.search_prefix(words, 20)
    exact = [t for t in hits if t.label.casefold() == words.casefold()]
    if len(exact) == 1:
        return exact[0].id
    return hits[0].id if len(hits) == 1 else None


@router.post("/undo", response_model=None)
async def undo(request: Request, posted: PostedForm) -> Response:
    back = _safe_return(posted.form.get("return_to"))
    actor = posted.session.actor
    undone = posted.desk.undo.undo(actor) if actor is not None else None
    return _redirect(request, _with_done(back, "undone" if undone is not None else "too-late", None))


@router.get("/tags")
async def tag_search(request: Request, q: str = "", limit: int = 10) -> JSONResponse:
    """The add field's autocomplete: vocabulary labels by word prefix (fetched with the CSRF header)."""
    session, _ = _session(request)
    if not csrf_ok(session, request.headers.get(CSRF_HEADER)):
        raise HTTPException(403, "missing or wrong CSRF token")
    vocabulary = _desk(request).services.vocabulary
    hits = vocabulary.search_prefix(q[:200], max(1, min(limit, 20))) if vocabulary is not None and q.strip() else []
    return JSONResponse({"tags": [{"id": t.id, "label": t.label, "group": t.group} for t in hits]})


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_form(request: Request) -> HTMLResponse:
    session, _ = _session(request)
    return _render(request, "sign_in.html", session, {"title": "Sign in", "error": None,
                                                       "return_to": _safe_return(request.query_params.get("to"))})


@router.post("/sign-in", response_model=None)
async def sign_in(request: Request, posted: PostedFormOnly) -> Response:
    desk_, session, form = posted.desk, posted.session, posted.form
    back = _safe_return(form.get("return_to"))
    if desk_.attempts.take(f"sign-in:{client_address(request.scope)}") is not None:
        return _render(request, "sign_in.html", session, {
            "title": "Sign in", "return_to": back,
            "error": "Too many sign-in attempts from this address. Wait a minute and try again."}, status=429)
    curator_id = curator_for_key(desk_.services.settings, form.get("key", ""))
    if curator_id is None:
        return _render(request, "sign_in.html", session, {
            "title": "Sign in", "return_to": back,
            "error": "That curator key is not accepted. Check it and try again."}, status=403)
    log.info("curator %s signed in to the review desk", curator_id)
    # a fresh CSRF token: one seen before signing in is worth nothing after
    return _redirect(request, back, Session(kind="curator", actor_id=curator_id,
                                            csrf=Session.anonymous().csrf))


@router.post("/sign-out", response_model=None)
async def sign_out(request: Request, posted: PostedFormOnly) -> Response:
    if posted.session.actor is not None:
        posted.desk.undo.flush_actor(posted.session.actor)
    return _redirect(request, "/review", Session.anonymous())


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, _Refused)
    return exc.response


def install_review_desk(app: FastAPI, services: Services) -> ReviewDesk:
    """Mount the desk's pages and static files on ``app``; the caller starts and stops it."""
    settings = services.settings

    def publish(event) -> None:
        services.publisher().publish(event)

    review_desk = ReviewDesk(
        services=services,
        sessions=SessionCodec(settings, session_secret(settings)),
        undo=UndoBuffer(publish, settings.review_undo_window_s),
        attempts=TokenBuckets(settings.rate_limit_anonymous_per_s, settings.rate_limit_anonymous_burst,
                              settings.rate_limit_max_clients),
    )
    app.state.review_desk = review_desk
    app.add_exception_handler(_Refused, _refused)
    app.mount("/review/static", StaticFiles(directory=HERE / "static"), name="review-static")
    app.include_router(router)
    return review_desk
