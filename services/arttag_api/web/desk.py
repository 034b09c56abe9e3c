"""The review desk's use of the curation service layer (:mod:`arttag_api.curation`): the queue,
an artwork's card, contributor registration, and feedback events checked like the JSON API's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from arttag.events import FeedbackActor, TagFeedbackGiven

from fastapi import HTTPException

from arttag_api import curation
from arttag_api.deps import Services
from arttag_api.web.cards import CardView, TagState, build_card
from arttag_api.web.undo import UndoBuffer


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

        values = {"tag_group": self.group, "band": self.band, "model_version": self.model_version,
                  "offset": self.offset or None, **changes}
        pairs = {k: v for k, v in values.items() if v not in (None, "")}
        return ("?" + urlencode(pairs)) if pairs else ""


def queue(services: Services, filters: Filters, limit: int) -> Any:
    return curation.review_queue(services, tag_group=filters.group, band=filters.band,
                                    model_version=filters.model_version, limit=limit, offset=filters.offset)


def card(services: Services, artwork_id: str, viewer: FeedbackActor | None,
         held: TagFeedbackGiven | None) -> CardView | None:
    found = curation.artwork_card(services, artwork_id, viewer=viewer)
    if found is None:
        return None
    return build_card(
        artwork_id, found.artwork, [t.suggestion for t in found.tags if t.suggestion is not None],
        model_version=found.model_version, suggestion_id=found.suggestion_id,
        states={t.tag_id: TagState.of(t) for t in found.tags},
        labels={t.tag_id: (t.label or t.tag_id, t.group) for t in found.tags}, held=held,
    )


def register(services: Services) -> tuple[str, str]:
    return curation.register_contributor(services)


class _Holding:
    """A publisher that hands each event to the undo buffer instead of the broker."""

    def __init__(self, undo: UndoBuffer) -> None:
        self.undo = undo

    def publish(self, event: TagFeedbackGiven) -> None:
        self.undo.hold(event)

    def close(self) -> None:
        pass


def give_feedback(services: Services, undo: UndoBuffer, actor: FeedbackActor, *, artwork_id: str, tag_id: str,
                  action: str, suggestion_id: str | None, model_version: str | None) -> str:
    """The action through the service layer, its event held for undo; refused as the JSON API refuses it."""
    if action not in ("accepted", "rejected", "added"):
        raise DeskError(422, f"Unknown action {action!r}.")
    vocabulary = services.vocabulary
    if vocabulary is not None and vocabulary.get(tag_id) is None:
        raise DeskError(422, f"There is no tag {tag_id!r} in the vocabulary.")
    try:
        return curation.publish_feedback(services, _Holding(undo), actor=actor, artwork_id=artwork_id,
                                            tag_id=tag_id, action=action,  # type: ignore[arg-type]
                                            suggestion_id=suggestion_id or None, model_version=model_version or None)
    except HTTPException as exc:
        if exc.status_code == 403:
            raise DeskError(403, "Public contributors vote on suggested tags; adding a tag is for curators.") from exc
        if exc.status_code == 503:
            raise DeskError(503, "Your previous action could not be stored just now, so this one was not taken "
                            "either. Wait a few seconds and try again.") from exc
        raise DeskError(exc.status_code, str(exc.detail)) from exc
