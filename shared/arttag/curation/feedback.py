"""Reading feedback events: the produced contract, read tolerantly.

``TagFeedbackGiven`` is strict for the API that writes it; a reader must ignore fields a
newer writer adds within the version (docs/topics.md, schema evolution), so the curation
processor decodes with this tolerant twin.
"""

from __future__ import annotations

from pydantic import ConfigDict

from arttag.events import FeedbackActor, TagFeedbackGiven, decode_event


class _ActorRead(FeedbackActor):
    model_config = ConfigDict(frozen=True, extra="ignore")


class FeedbackRead(TagFeedbackGiven):
    model_config = ConfigDict(frozen=True, extra="ignore")

    actor: _ActorRead


def decode_feedback(raw: bytes | None) -> TagFeedbackGiven:
    """Bytes to a feedback event; raises EventDecodeError saying what is wrong."""
    return decode_event(raw, FeedbackRead)
