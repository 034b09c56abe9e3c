"""Review-desk sessions: who the browser is (anonymous, a public contributor, a curator) and
its CSRF token, in one signed cookie.

The cookie is signed, not encrypted (itsdangerous, with a timestamp checked against
``session_max_age_s``): it holds no curator key, only the curator's id, and for a public
contributor the token the contract issued them (theirs to hold anyway). HttpOnly, so page
scripts never read it; SameSite=Lax, so other sites' forms do not carry it; Secure when the
request came over https. The CSRF token is bound to the session: every POST must echo it in
the ``csrf_token`` form field or the ``X-CSRF-Token`` header, and a new one is issued on
sign-in and sign-out, so a token seen before signing in is worthless after.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Literal

from arttag.events import FeedbackActor
from arttag.settings import ApiSettings
from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import BaseModel, ConfigDict, ValidationError

from arttag_api.auth import credential_for

log = logging.getLogger(__name__)

COOKIE = "arttag_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


class Session(BaseModel):
    """What the cookie carries. ``kind`` None: an anonymous visitor (who still has a CSRF token)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["curator", "public"] | None = None
    actor_id: str | None = None
    contributor_token: str | None = None
    csrf: str

    @classmethod
    def anonymous(cls) -> Session:
        return cls(csrf=secrets.token_urlsafe(32))

    @property
    def actor(self) -> FeedbackActor | None:
        if self.kind is None or self.actor_id is None:
            return None
        return FeedbackActor(kind=self.kind, id=self.actor_id)

    @property
    def is_curator(self) -> bool:
        return self.kind == "curator"


def session_secret(settings: ApiSettings) -> str:
    """The configured secret, or a random one for this process (logged: sessions end with it)."""
    if settings.session_secret is not None:
        return settings.session_secret.get_secret_value()
    log.warning("ARTTAG_SESSION_SECRET is not set: review-desk sessions are signed with a key made "
                "at start and will not survive a restart (nor work across replicas)")
    return secrets.token_urlsafe(48)


def curator_for_key(settings: ApiSettings, key: str) -> str | None:
    """The curator whose key this is (``ARTTAG_CURATORS``); an integration key signs nobody in."""
    credential = credential_for(key, settings) if key else None
    return credential.curator_id if credential is not None and credential.kind == "curator" else None


class SessionCodec:
    """Reads and writes the session cookie; a cookie that fails the signature, the age check or
    the model is treated as absent (the visitor starts anonymous), never as an error."""

    def __init__(self, settings: ApiSettings, secret: str) -> None:
        self.settings = settings
        self._serializer = URLSafeTimedSerializer(secret, salt="arttag-review-session")

    def read(self, request: Request) -> Session | None:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            session = Session.model_validate(self._serializer.loads(raw, max_age=self.settings.session_max_age_s))
        except (BadSignature, ValidationError, TypeError, ValueError):
            return None
        # a curator removed from ARTTAG_CURATORS loses their open sessions at once
        if session.kind == "curator" and session.actor_id not in self.settings.curators:
            return None
        if session.kind == "public" and not self.settings.public_votes:
            return None
        return session

    def write(self, response: Response, session: Session, request: Request) -> None:
        response.set_cookie(
            COOKIE, self._serializer.dumps(session.model_dump(exclude_none=True)),
            max_age=self.settings.session_max_age_s, path="/review", httponly=True, samesite="lax",
            secure=request.url.scheme == "https",
        )


def csrf_ok(session: Session | None, sent: str | None) -> bool:
    return session is not None and bool(sent) and hmac.compare_digest(session.csrf.encode(), sent.encode())
