"""Reading feedback events: the produced contract, read tolerantly.

``TagFeedbackGiven`` is strict for the API that writes it; a reader must ignore fields a
newer writer adds within the version (docs/topics.md, schema evolution), nested ones
(``actor``) included, so every reader of ``tags.feedback.v1`` (the curation fold, the stream
worker's data-quality monitor) decodes here: unknown fields ignored, and a time without a
zone read as UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import field_validator

from arttag.events import TagFeedbackGiven, decode_event


class FeedbackRead(TagFeedbackGiven):
    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        # the fold orders votes by time: a time without a zone is read as UTC, not refused
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def decode_feedback(raw: bytes | None) -> TagFeedbackGiven:
    """Bytes to a feedback event; raises EventDecodeError saying what is wrong."""
    return decode_event(raw, FeedbackRead, ignore_unknown=True)
