"""Credentials: API keys (integrations and curators) in ``X-API-Key`` and public contributors'
tokens in ``X-Contributor-Token``; only sha256 hex digests are stored, compared in constant time.

An integration key (``ARTTAG_API_KEY_HASHES``) names the actor in the body of its feedback; a
curator key (``ARTTAG_CURATORS``) is the actor: the curator id comes from the key alone. A
contributor token was handed out by ``POST /v1/contributors``; its digest lives in the
curation database.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Annotated, Literal

from arttag.events import FeedbackActor
from fastapi import Depends, HTTPException, Security
from fastapi.security import APIKeyHeader

from arttag_api.deps import ServicesDep, SettingsDep

log = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
CONTRIBUTOR_TOKEN_HEADER = "X-Contributor-Token"

# auto_error=False: a missing key is answered by us with 401 (FastAPI would send 403)
api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                              description="An API key (integration or curator); the server stores only its "
                              "sha256 digest")
contributor_token_header = APIKeyHeader(
    name=CONTRIBUTOR_TOKEN_HEADER, auto_error=False, scheme_name="ContributorToken",
    description="A public contributor's token from POST /v1/contributors",
)


def hash_api_key(key: str) -> str:
    """What goes into ``ARTTAG_API_KEY_HASHES`` and ``ARTTAG_CURATORS``: ``sha256(key)`` as lowercase hex."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_matches(key: str, hashes: list[str]) -> bool:
    """Compares against every stored digest, without stopping early, in constant time each."""
    digest = hash_api_key(key).encode("ascii")
    matched = False
    for stored in hashes:
        matched |= hmac.compare_digest(digest, stored.strip().lower().encode("ascii", "replace"))
    return matched


@dataclass(frozen=True)
class Credential:
    """Who an accepted API key belongs to: an integration, or a named curator."""

    kind: Literal["integration", "curator"]
    curator_id: str | None = None

    @property
    def actor(self) -> FeedbackActor | None:
        """The actor feedback is published as; None for an integration (it names one per request)."""
        return FeedbackActor(kind="curator", id=self.curator_id) if self.curator_id else None


def credential_for(key: str, settings) -> Credential | None:
    """The key's credential, or None when no configured digest matches."""
    digest = hash_api_key(key).encode("ascii")
    curator = None
    for curator_id, stored in sorted(settings.curators.items()):
        if hmac.compare_digest(digest, stored.encode("ascii", "replace")):
            curator = curator_id
    if curator is not None:
        return Credential("curator", curator)
    return Credential("integration") if key_matches(key, settings.api_key_hashes) else None


def require_api_key(
    settings: SettingsDep, key: Annotated[str | None, Security(api_key_header)] = None
) -> Credential:
    """401 without a key, 403 with one that is not accepted."""
    if not key:
        raise HTTPException(401, f"this operation needs an API key in the {API_KEY_HEADER} header",
                            headers={"WWW-Authenticate": API_KEY_HEADER})
    credential = credential_for(key, settings)
    if credential is None:
        raise HTTPException(403, "the API key is not accepted")
    return credential


def optional_credential(
    settings: SettingsDep, key: Annotated[str | None, Security(api_key_header)] = None
) -> Credential | None:
    """None without a key (a public read); 403 with a key that is not accepted."""
    return require_api_key(settings, key) if key else None


def require_curator(credential: Annotated[Credential, Depends(require_api_key)]) -> Credential:
    if credential.kind != "curator":
        raise HTTPException(403, "this operation needs a curator's key (ARTTAG_CURATORS)")
    return credential


def require_contributor(
    services: ServicesDep, token: Annotated[str | None, Security(contributor_token_header)] = None,
) -> FeedbackActor:
    """The public contributor of a token: 404 while public votes are off, 401 without a token,
    403 with one that was never handed out."""
    if not services.settings.public_votes:
        raise HTTPException(404, "public votes are turned off here (ARTTAG_PUBLIC_VOTES=false)")
    if not token:
        raise HTTPException(401, f"a vote needs the token from POST /v1/contributors in the "
                            f"{CONTRIBUTOR_TOKEN_HEADER} header",
                            headers={"WWW-Authenticate": CONTRIBUTOR_TOKEN_HEADER})
    contributor_id = services.curation_store().contributor_for_token(hash_api_key(token))
    if contributor_id is None:
        raise HTTPException(403, "the contributor token is not known here")
    return FeedbackActor(kind="public", id=contributor_id)


ApiKeyRequired = Depends(require_api_key)
CredentialDep = Annotated[Credential, Depends(require_api_key)]
OptionalCredentialDep = Annotated[Credential | None, Depends(optional_credential)]
ContributorDep = Annotated[FeedbackActor, Depends(require_contributor)]
