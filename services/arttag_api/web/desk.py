"""The review desk's use of the curation service layer (:mod:`arttag_api.curation`): the queue,
an artwork's card, contributor registration, and feedback events checked like the JSON API's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from arttag.events import FeedbackActor, TagFeedbackGiven

from arttag_api.deps import Services
from arttag_api.web.cards import CardView, TagState, build_card


def _curation():
    from arttag_api import curation

    return curation


class DeskError(Exception):
    """An action the desk refuses, with the status and a sentence for the person."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Filters:
    group: str | None = None
    band: str | None = None
    model_version: str | None = None
    offset: int = 0

    def query(self, **changes: Any) -> str:
        from urllib.parse import urlencode

        values = {"group": self.group, "band": self.band, "model_version": self.model_version,
                  "offset": self.offset or None, **changes}
        pairs = {k: v for k, v in values.items() if v not in (None, "")}
        return ("?" + urlencode(pairs)) if pairs else ""


def queue(services: Services, filters: Filters, limit: int) -> Any:
    return _curation().review_queue(services, group=filters.group, band=filters.band,
                                 model_version=filters.model_version, limit=limit, offset=filters.offset)


def card(services: Services, artwork_id: str, viewer: FeedbackActor | None,
         held: TagFeedbackGiven | None) -> CardView | None:
    found = _curation().artwork_card(services, artwork_id, viewer=viewer or FeedbackActor(kind="public", id="anonymous"))
    if found is None:
        return None
    latest = found.suggestions
    states = {t.tag_id: TagState.of(t) for t in found.tags}
    labels = {t.tag_id: (t.label or t.tag_id, t.group) for t in found.tags}
    return build_card(artwork_id, found.artwork, latest.suggestions if latest is not None else [],
                      model_version=latest.model_version if latest is not None else None,
                      suggestion_id=latest.suggestion_id if latest is not None else None,
                      states=states, labels=labels, held=held)


def register(services: Services) -> tuple[str, str]:
    return _curation().register_contributor(services)


def feedback_event(services: Services, actor: FeedbackActor, *, artwork_id: str, tag_id: str, action: str,
                   suggestion_id: str | None, model_version: str | None) -> TagFeedbackGiven:
    """The event the action publishes (time and id fixed now); refused as the JSON API refuses it."""
    if actor.kind == "public" and action not in ("accepted", "rejected"):
        raise DeskError(403, "Public contributors vote on suggested tags; adding a tag is for curators.")
    if action not in ("accepted", "rejected", "added"):
        raise DeskError(422, f"Unknown action {action!r}.")
    vocabulary = services.vocabulary
    tag = vocabulary.get(tag_id) if vocabulary is not None else None
    if vocabulary is not None and tag is None:
        raise DeskError(422, f"There is no tag {tag_id!r} in the vocabulary.")
    return TagFeedbackGiven(artwork_id=artwork_id, tag_id=tag_id, tag_label=tag.label if tag else None,
                            action=action, actor=actor, suggestion_id=suggestion_id or None,
                            model_version=model_version or None)
