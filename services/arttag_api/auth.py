"""API keys: sent in ``X-API-Key``, stored only as sha256 hex digests, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Annotated

from fastapi import Depends, HTTPException, Security
from fastapi.security import APIKeyHeader

from arttag_api.deps import SettingsDep

log = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"

# auto_error=False: a missing key is answered by us with 401 (FastAPI would send 403)
api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                              description="An API key; the server stores only its sha256 digest")


def hash_api_key(key: str) -> str:
    """What goes into ``ARTTAG_API_KEY_HASHES``: ``sha256(key)`` as lowercase hex."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_matches(key: str, hashes: list[str]) -> bool:
    """Compares against every stored digest, without stopping early, in constant time each."""
    digest = hash_api_key(key).encode("ascii")
    matched = False
    for stored in hashes:
        matched |= hmac.compare_digest(digest, stored.strip().lower().encode("ascii", "replace"))
    return matched


def require_api_key(
    settings: SettingsDep, key: Annotated[str | None, Security(api_key_header)] = None
) -> None:
    """401 without a key, 403 with one that is not accepted."""
    if not key:
        raise HTTPException(401, f"this operation needs an API key in the {API_KEY_HEADER} header",
                            headers={"WWW-Authenticate": API_KEY_HEADER})
    if not key_matches(key, settings.api_key_hashes):
        raise HTTPException(403, "the API key is not accepted")


ApiKeyRequired = Depends(require_api_key)
