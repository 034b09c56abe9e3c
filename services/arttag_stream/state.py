"""The per-artwork state, rebuilt from the compacted latest-suggestions topic and kept following it."""

from __future__ import annotations

import json

from arttag.kafka.follower import CompactedFollower
from arttag.kafka.sink import LATEST_HEADERS
from arttag.settings import KafkaSettings

from arttag_stream.processing import ArtworkState, StateStore


def decode_state(value: bytes, headers: list[tuple[str, bytes]] | None = None) -> tuple[str, ArtworkState]:
    """An artwork's state from a latest-suggestions record: from its headers when it has them,
    else from the four fields of its JSON (records written before the headers)."""
    found = {k: v for k, v in headers or () if k in LATEST_HEADERS and v is not None}
    if len(found) == len(LATEST_HEADERS):
        artwork_id, revision, chash, model = (found[k].decode() for k in LATEST_HEADERS)
    else:
        data = json.loads(value)
        artwork_id, revision, chash, model = (data["artwork_id"], data["revision"],
                                              data["content_hash"], data["model_version"])
    return str(artwork_id), ArtworkState(int(revision), str(chash), str(model))


class LatestFollower(CompactedFollower[ArtworkState]):
    """Reads the latest-suggestions topic from the beginning into a :class:`StateStore`.

    ``load()`` blocks until every partition's end (as of the call) is read;
    ``start()`` then keeps following the topic in a thread, so suggestions that
    other workers of the group publish reach this worker's state too (they
    matter after a rebalance hands it their partitions). Tombstones delete an
    artwork's state: its next event is answered again.
    """

    def __init__(self, kafka: KafkaSettings, topic: str, store: StateStore) -> None:
        super().__init__(kafka, topic, store, decode_state, name="state")

    @property
    def store(self) -> StateStore:
        return self.table  # type: ignore[return-value]
