"""Session cookies: signed, bounded in age, refused when tampered with or when the curator is gone."""

from __future__ import annotations

from arttag.settings import ApiSettings
from arttag_api.auth import hash_api_key
from arttag_api.web.sessions import COOKIE, Session, SessionCodec, csrf_ok, curator_for_key
from fastapi import Request, Response


def _request(cookie: str | None = None, scheme: str = "http") -> Request:
    headers = [(b"cookie", f"{COOKIE}={cookie}".encode())] if cookie else []
    return Request({"type": "http", "method": "GET", "path": "/review", "headers": headers, "scheme": scheme,
                    "server": ("example.org", 443 if scheme == "https" else 80), "query_string": b""})


def _written(codec: SessionCodec, session: Session, scheme: str = "http") -> tuple[str, str]:
    response = Response()
    codec.write(response, session, _request(scheme=scheme))
    header = response.headers["set-cookie"]
    return header.split(";", 1)[0].split("=", 1)[1], header


def test_a_written_session_reads_back_and_the_cookie_is_httponly_lax_and_secure_over_https():
    settings = ApiSettings(curators={"jsmith": hash_api_key("k")})
    codec = SessionCodec(settings, "s" * 40)
    session = Session(kind="curator", actor_id="jsmith", csrf="tok")
    value, header = _written(codec, session)
    assert codec.read(_request(value)) == session
    assert "HttpOnly" in header and "SameSite=lax" in header and "Path=/review" in header
    assert "Secure" not in header
    assert "Secure" in _written(codec, session, "https")[1]


def test_tampered_foreign_expired_or_revoked_sessions_are_not_read():
    settings = ApiSettings(curators={"jsmith": hash_api_key("k")})
    codec = SessionCodec(settings, "s" * 40)
    value, _ = _written(codec, Session(kind="curator", actor_id="jsmith", csrf="tok"))
    assert codec.read(_request(value[:-2] + ("AA" if not value.endswith("AA") else "BB"))) is None
    assert SessionCodec(settings, "t" * 40).read(_request(value)) is None  # another secret
    removed = SessionCodec(ApiSettings(curators={}), "s" * 40)
    assert removed.read(_request(value)) is None  # the curator was taken off ARTTAG_CURATORS
    expired = SessionCodec(settings.model_copy(update={"session_max_age_s": -1}), "s" * 40)
    assert expired.read(_request(value)) is None


def test_curator_keys_and_csrf_tokens_compare_exactly():
    settings = ApiSettings(curators={"jsmith": hash_api_key("key-1"), "adoe": hash_api_key("key-2").upper()})
    assert curator_for_key(settings, "key-1") == "jsmith"
    assert curator_for_key(settings, "key-2") == "adoe"
    assert curator_for_key(settings, "key-3") is None and curator_for_key(settings, "") is None
    session = Session.anonymous()
    assert csrf_ok(session, session.csrf)
    assert not csrf_ok(session, None) and not csrf_ok(session, session.csrf + "x") and not csrf_ok(None, "x")
    assert Session.anonymous().csrf != session.csrf
