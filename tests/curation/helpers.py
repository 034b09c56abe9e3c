"""Feedback events for the curation tests, at given seconds after a fixed time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from arttag.events import FeedbackActor, TagFeedbackGiven

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def feedback(artwork: str, tag: str, action: str, who: str, at: float, *, kind: str = "public",
             event_id: str | None = None, **fields) -> TagFeedbackGiven:
    """``who`` votes ``action`` on ``tag`` of ``artwork`` ``at`` seconds after T0."""
    extra = {"event_id": event_id} if event_id else {}
    return TagFeedbackGiven(artwork_id=artwork, tag_id=tag, action=action,
                            actor=FeedbackActor(kind=kind, id=who),
                            occurred_at=T0 + timedelta(seconds=at), **extra, **fields)


def curator(artwork: str, tag: str, action: str, at: float, who: str = "cur-1", **fields) -> TagFeedbackGiven:
    return feedback(artwork, tag, action, who, at, kind="curator", **fields)
