"""The latest suggestions per artwork, held in memory and fed from the compacted topic.

The compacted ``tags.suggestions.latest.v1`` topic is the source of truth: the
view is rebuilt by reading it from the beginning on every start, so there is no
extra store to operate or migrate, and a restarted API converges on the same state.
Merge and tombstone rules are the topic's (:mod:`arttag.kafka.follower`).
"""

from __future__ import annotations

from arttag.events import TagSuggestionsPublished, decode_event
from arttag.kafka.follower import CompactedFollower, LatestTable
from arttag.kafka.topics import TAG_SUGGESTIONS_LATEST, topic_name
from arttag.settings import KafkaSettings


class LatestSuggestionsView(LatestTable[TagSuggestionsPublished]):
    """Artwork id -> newest TagSuggestionsPublished; safe to read while the follower writes."""

    def apply(self, event: TagSuggestionsPublished) -> bool:
        """Keep ``event`` unless the view holds a newer one (higher revision, or the same revision
        produced later); returns whether it was kept."""
        return self.merge(event.artwork_id, event)


def _decode(value: bytes, headers: object = None) -> tuple[str, TagSuggestionsPublished]:
    # a newer worker of the same version may write a new optional field: ignored, not skipped
    event = decode_event(value, TagSuggestionsPublished, ignore_unknown=True)
    return event.artwork_id, event


class LatestViewFollower(CompactedFollower[TagSuggestionsPublished]):
    """A background thread reading the compacted topic from the beginning into a view.

    Every API replica reads every partition (no group, nothing committed); the view's
    ``caught_up`` is set once the topic's end as of the start is read, and ``error`` says
    why not (the topic does not exist yet, the broker is unreachable) for ``/readyz``.
    """

    def __init__(self, kafka: KafkaSettings, view: LatestSuggestionsView, poll_s: float = 0.5) -> None:
        super().__init__(kafka, topic_name(TAG_SUGGESTIONS_LATEST, kafka.topic_prefix), view, _decode,
                         name="latest-view", poll_s=poll_s)

    @property
    def view(self) -> LatestSuggestionsView:
        return self.table  # type: ignore[return-value]
