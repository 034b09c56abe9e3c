"""Online learning from decisions: accepted artworks become tagged neighbours, rejected tags stay away.

:class:`OnlineLearner` follows ``tags.decisions.v1`` and the artwork topics (the catalogue,
:mod:`arttag.kafka.artworks`) into two tables, and keeps, per artwork with accepted tags and
known metadata, the tags it is now known to carry (:func:`learned_tags`). A tagger follows the
learner (:meth:`arttag.model.bundle.BundleTagger.learn_from`) and makes those artworks
neighbours of its neighbour scorers (``knn``, ``tfidf``, ``tfidf_artist``, ``group``,
``artist``, ``accession``) at the start of its next batch, without retraining; a tagger
swapped in by a hot reload learns them all again (:meth:`OnlineLearner.loader`).

The rules (docs/curation.md, "Learning from decisions"):

- an artwork is learned once it has at least one accepted tag and the catalogue has its
  metadata; its tags are its catalogued tags plus the accepted ones, minus the rejected ones.
  When that changes (or its text does), it is learned again and replaces its earlier entry;
  when no accepted tag is left, it is forgotten (a trained artwork goes back to its catalogued
  tags);
- a rejected tag is not suggested again for its artwork while the artwork's text (what
  :func:`arttag.catalogue.text.build_text` makes of it, the model's input) is the text of the
  suggestion that was rejected; once the text changes the tag may come back. The suggestion is
  the one the rejected decision's ``suggestion_id`` names, by its content hash: the learner
  remembers the text of every content hash the catalogue topics carried, so a catalogue
  update that changes only the catalogued tags or the accession number keeps the rejection.
  A content hash the catalogue never carried counts as other text unless it is the current
  content's; a rejection that names no suggestion (or an unreadable one) holds whatever the text.

Example::

    learner = OnlineLearner.following(settings.kafka)
    learner.load()            # blocking: the decisions and the catalogue as of now
    learner.attach(tagger)    # learns every accepted artwork now
    learner.start()           # keeps following; the tagger picks changes up per batch
    learner.rejected_tags("T01234", artwork)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException

from arttag.catalogue.text import build_text, content_hash, text_hash
from arttag.errors import ArttagError
from arttag.events import (
    ArtworkMetadata,
    TagDecision,
    TagDecisionsChanged,
    decode_event,
)
from arttag.kafka.artworks import CatalogueFollower, LatestArtworks
from arttag.kafka.follower import CompactedFollower, LatestTable
from arttag.kafka.topics import TAG_DECISIONS, topic_name
from arttag.model.tagger import TaggedArtwork
from arttag.settings import KafkaSettings

log = logging.getLogger(__name__)


# -- the rules, as plain functions ---------------------------------------------------------------


def learned_tags(artwork: ArtworkMetadata, decisions: TagDecisionsChanged) -> frozenset[str]:
    """The tags an artwork is known to carry: catalogued plus accepted, minus rejected; empty
    while nothing is accepted (an artwork is learned for its decisions, not its catalogue)."""
    if not decisions.accepted:
        return frozenset()
    rejected = {d.tag_id for d in decisions.rejected}
    return frozenset(({t.id for t in artwork.tags} | {d.tag_id for d in decisions.accepted}) - rejected)


def suggested_content(artwork_id: str, suggestion_id: str | None) -> str | None:
    """The content hash prefix (16 hex digits) a suggestion id names, or None when it names none
    (ids are ``<artwork id>:<revision>:<hash16>:<model version>:<answer digest>``, see
    :meth:`arttag.events.TagSuggestionsPublished.make_id`; the artwork id may hold colons)."""
    if not suggestion_id or not suggestion_id.startswith(f"{artwork_id}:"):
        return None
    parts = suggestion_id[len(artwork_id) + 1:].split(":", 2)
    if len(parts) < 3 or not parts[0].isdigit() or len(parts[1]) != 16:
        return None
    return parts[1]


TextOf = Callable[[str], "str | None"]
"""``text_of(content hash prefix)``: the text hash of the artwork's content with that hash, if known."""


def rejection_holds(artwork_id: str, decision: TagDecision, artwork: ArtworkMetadata,
                    text_of: TextOf = lambda _: None) -> bool:
    """Whether a rejected tag stays unsuggested for ``artwork`` as it is now (the module's rule)."""
    judged = suggested_content(artwork_id, decision.suggestion_id)
    if judged is None or judged == content_hash(artwork)[:16]:
        return True
    judged_text = text_of(judged)
    return judged_text is not None and judged_text == text_hash(build_text(artwork))


def rejected_tags(decisions: TagDecisionsChanged | None, artwork: ArtworkMetadata,
                  text_of: TextOf = lambda _: None) -> set[str]:
    """The rejected tag ids that hold for ``artwork`` as it is now."""
    if decisions is None:
        return set()
    return {d.tag_id for d in decisions.rejected if rejection_holds(decisions.artwork_id, d, artwork, text_of)}


# -- the decisions topic as a table ---------------------------------------------------------------


@dataclass(frozen=True)
class DecisionsRecord:
    """An artwork's decisions as the compacted topic holds them. No revision: the record read
    last for a key is its newest (one key, one partition), which the merge rule keeps."""

    decisions: TagDecisionsChanged
    revision: int = 0
    produced_at: datetime | None = None


class LatestDecisions(LatestTable[DecisionsRecord]):
    """Artwork id -> its newest :class:`TagDecisionsChanged`; safe to read while a follower writes."""

    def decisions(self, artwork_id: str) -> TagDecisionsChanged | None:
        record = self.get(artwork_id)
        return record.decisions if record is not None else None


def decode_decisions_record(value: bytes, headers: object = None) -> tuple[str, DecisionsRecord]:
    # a newer `arttag curate` of the same version may write a new optional field: ignored
    event = decode_event(value, TagDecisionsChanged, ignore_unknown=True)
    return event.artwork_id, DecisionsRecord(event)


class DecisionsFollower(CompactedFollower[DecisionsRecord]):
    """Reads ``tags.decisions.v1`` from the beginning into a :class:`LatestDecisions`, then follows it."""

    def __init__(self, kafka: KafkaSettings, table: LatestDecisions, poll_s: float = 0.5) -> None:
        super().__init__(kafka, topic_name(TAG_DECISIONS, kafka.topic_prefix), table, decode_decisions_record,
                         name="decisions", poll_s=poll_s)


# -- the learner ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    sequence: int
    example: TaggedArtwork
    chash: str


class OnlineLearner:
    """What taggers learn online, kept up to date from the decisions and the catalogue tables.

    Implements :class:`arttag.model.tagger.LearningSource`. Thread-safe: the followers' threads
    write, the serving threads read. Built on tables alone for tests and benchmarks
    (``OnlineLearner()`` then ``learner.decisions.merge(...)``), or on Kafka with :meth:`following`.
    """

    def __init__(self, decisions: LatestDecisions | None = None, catalogue: LatestArtworks | None = None) -> None:
        self.decisions = decisions if decisions is not None else LatestDecisions()
        self.catalogue = catalogue if catalogue is not None else LatestArtworks()
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._sequence = 0
        self._texts: dict[tuple[str, str], str] = {}  # (artwork id, content hash prefix) -> text hash
        self._followers: list[CompactedFollower[Any]] = []
        self.decisions.listen(self.refresh)
        self.catalogue.listen(self.refresh)

    @classmethod
    def following(cls, kafka: KafkaSettings, poll_s: float = 0.5,
                  catalogue: LatestArtworks | None = None) -> OnlineLearner:
        """A learner fed by followers of ``tags.decisions.v1`` and the artwork topics (call
        :meth:`load`/:meth:`start`); with ``catalogue``, a table someone else follows (the
        API's catalogue view), it follows only the decisions."""
        learner = cls(catalogue=catalogue)
        learner._followers = [DecisionsFollower(kafka, learner.decisions, poll_s)]
        if catalogue is None:
            learner._followers.append(CatalogueFollower(kafka, learner.catalogue, poll_s))
        return learner

    # -- following --------------------------------------------------------------------------------

    def load(self, timeout_s: float | None = 120.0) -> None:
        """Read the decisions and the catalogue to their current ends (blocking). A topic that is
        not there yet is logged and left to :meth:`start`, which waits for it."""
        for follower in self._followers:
            try:
                follower.load(timeout_s)
            except (ArttagError, KafkaException) as exc:
                log.warning("online learning: %s not read at start (%s); following it once it exists",
                            follower.topic, exc)
        log.info("online learning: %d artwork(s) with accepted tags from %d decision record(s)",
                 len(self), len(self.decisions))

    def start(self) -> None:
        for follower in self._followers:
            follower.start()

    def close(self) -> None:
        for follower in self._followers:
            follower.stop()

    @property
    def error(self) -> str | None:
        return next((f.error for f in self._followers if f.error), None)

    # -- the learned set --------------------------------------------------------------------------

    def __len__(self) -> int:
        """Artworks learned with tags now."""
        with self._lock:
            return sum(1 for e in self._entries.values() if e.example.tag_ids)

    def refresh(self, artwork_id: str) -> None:
        """Bring ``artwork_id``'s learned state up to its decisions and metadata (table listeners call it)."""
        decisions = self.decisions.decisions(artwork_id)
        artwork = self.catalogue.metadata(artwork_id)
        chash = content_hash(artwork) if artwork is not None else ""
        with self._lock:
            if artwork is not None:
                self._texts.setdefault((artwork_id, chash[:16]), text_hash(build_text(artwork)))
            held = self._entries.get(artwork_id)
            if decisions is None or artwork is None or not decisions.accepted:
                if held is None or not held.example.tag_ids:
                    return
                # forgotten: the entry stays, without tags, so every tagger drops it
                example, chash = TaggedArtwork(artwork_id, held.example.artwork, frozenset()), held.chash
            else:
                example = TaggedArtwork(artwork_id, artwork, learned_tags(artwork, decisions))
                if held is not None and held.example.tag_ids == example.tag_ids and held.chash == chash:
                    return
            self._sequence += 1
            self._entries[artwork_id] = _Entry(self._sequence, example, chash)
        if self.decisions.caught_up.is_set() and self.catalogue.caught_up.is_set():  # not each one at start
            log.info("online learning: artwork %s %s", artwork_id,
                     f"learned with {len(example.tag_ids)} tag(s)" if example.tag_ids else "forgotten")

    def examples_since(self, position: int) -> tuple[list[TaggedArtwork], int]:
        with self._lock:
            if position >= self._sequence:
                return [], self._sequence
            changed = sorted((e for e in self._entries.values() if e.sequence > position), key=lambda e: e.sequence)
            return [e.example for e in changed], self._sequence

    def rejected_tags(self, artwork_id: str, artwork: ArtworkMetadata) -> set[str]:
        """Tag ids not to suggest for ``artwork`` as it is now (:func:`rejected_tags`)."""
        decisions = self.decisions.decisions(artwork_id)
        if decisions is None or not decisions.rejected:
            return set()
        return rejected_tags(decisions, artwork, lambda prefix: self._text_of(artwork_id, prefix))

    def _text_of(self, artwork_id: str, prefix: str) -> str | None:
        with self._lock:
            return self._texts.get((artwork_id, prefix))

    # -- taggers ----------------------------------------------------------------------------------

    def attach(self, tagger: Any) -> bool:
        """Make ``tagger`` follow this learner (it learns every accepted artwork now); False for a
        tagger that cannot learn (a test's fake), which is logged and left as it is."""
        learn_from: Callable[[OnlineLearner], int] | None = getattr(tagger, "learn_from", None)
        if learn_from is None:
            log.warning("online learning: the tagger %s cannot learn; serving it unchanged", type(tagger).__name__)
            return False
        learned = learn_from(self)
        log.info("online learning: model %s learned %d artwork(s) from decisions",
                 getattr(tagger, "model_version", "?"), learned)
        return True

    def loader(self, load: Callable[[Path, Any], Any]) -> Callable[[Path, Any], Any]:
        """A :class:`arttag.model.bundle_watch.BundleWatcher` loader whose new taggers follow this
        learner before they serve (they learn every accepted artwork in the loading thread)."""

        def load_and_attach(directory: Path, previous: Any) -> Any:
            tagger = load(directory, previous)
            self.attach(tagger)
            return tagger

        return load_and_attach
