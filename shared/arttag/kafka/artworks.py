"""The catalogue as the artwork topics tell it: artwork id -> its newest metadata.

Curation needs an artwork's own record wherever a decision about it is used: the review
desk shows its title and highlights the words that matched, and online learning turns an
artwork with accepted tags into a tagged neighbour. The ``artworks.created.v1`` and
``artworks.updated.v1`` topics already hold every record, so each reader rebuilds this
table from them on start (no store of its own) under the follower's merge rule: a higher
``revision`` wins, then a later ``occurred_at``. A record that does not decode is skipped
here; the worker dead-letters it.

Example::

    catalogue = LatestArtworks()
    follower = CatalogueFollower(kafka, catalogue)
    follower.load()      # blocking, to the topics' ends as of now
    follower.start()     # then keep following in a thread
    catalogue.metadata("T01234")
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from arttag.events import ArtworkMetadata, decode_artwork_event
from arttag.kafka.follower import CompactedFollower, LatestTable
from arttag.kafka.topics import ARTWORKS_CREATED, ARTWORKS_UPDATED, topic_name
from arttag.settings import KafkaSettings


@dataclass(frozen=True)
class CatalogueRecord:
    """One artwork revision as the topics carry it (what the merge rule compares, and the metadata)."""

    artwork_id: str
    revision: int
    produced_at: datetime | None
    artwork: ArtworkMetadata
    event_id: str


class LatestArtworks(LatestTable[CatalogueRecord]):
    """Artwork id -> newest :class:`CatalogueRecord`; safe to read while a follower writes."""

    def metadata(self, artwork_id: str) -> ArtworkMetadata | None:
        record = self.get(artwork_id)
        return record.artwork if record is not None else None


def decode_catalogue_record(value: bytes, headers: object = None) -> tuple[str, CatalogueRecord]:
    event = decode_artwork_event(value)
    return event.artwork_id, CatalogueRecord(
        artwork_id=event.artwork_id, revision=event.revision, produced_at=event.occurred_at,
        artwork=event.artwork, event_id=event.event_id,
    )


class CatalogueFollower(CompactedFollower[CatalogueRecord]):
    """Reads both artwork topics from the beginning into a :class:`LatestArtworks`, then follows them."""

    def __init__(self, kafka: KafkaSettings, catalogue: LatestArtworks, poll_s: float = 0.5) -> None:
        prefix = kafka.topic_prefix
        super().__init__(kafka, (topic_name(ARTWORKS_CREATED, prefix), topic_name(ARTWORKS_UPDATED, prefix)),
                         catalogue, decode_catalogue_record, name="catalogue", poll_s=poll_s)

    @property
    def catalogue(self) -> LatestArtworks:
        return self.table  # type: ignore[return-value]
