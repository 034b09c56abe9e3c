"""Reading feedback events: the produced contract, read tolerantly.

``TagFeedbackGiven`` is strict for the API that writes it; a reader must ignore fields a
newer writer adds within the version (docs/topics.md, schema evolution), so the curation
processor decodes with this tolerant twin, which also reads a time without a zone as UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import ConfigDict, field_validator

from arttag.events import FeedbackActor, TagFeedbackGiven, decode_event


class _ActorRead(FeedbackActor):
    model_config = ConfigDict(frozen=True, extra="ignore")


class FeedbackRead(TagFeedbackGiven):
    model_config = ConfigDict(frozen=True, extra="ignore")

    actor: _ActorRead

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        # the fold orders votes by time: a time without a zone is read as UTC, not refused
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def decode_feedback(raw: bytes | None) -> TagFeedbackGiven:
    """Bytes to a feedback event; raises EventDecodeError saying what is wrong."""
    return decode_event(raw, FeedbackRead)
