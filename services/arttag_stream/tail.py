"""Following the output topics and printing them for a person to read.

A suggestion event names its artwork by id and revision only; the titles and the readable
reasons come from the artwork's record, which the demo has and ``arttag tail`` reads from
the artwork topics (:class:`arttag.kafka.artworks.CatalogueFollower`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Literal

from arttag.events import ArtworkMetadata, DeadLetter, TagSuggestion, TagSuggestionsPublished
from arttag.kafka.artworks import LatestArtworks
from arttag.kafka.clients import consumer, partitions
from arttag.kafka.topics import StreamTopics
from arttag.model.readable import reason
from arttag.settings import KafkaSettings
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, TopicPartition

Which = Literal["suggestions", "latest", "dead-letters"]


def _summary_reason(tag: TagSuggestion) -> str:
    """Without the artwork's record: the event's summary (already free of fragments, stop
    words and zero weights: :mod:`arttag.model.explain`), less its "'label' (NN% confidence); "
    opening, which the line above shows; or else the strongest piece of evidence."""
    summary = tag.explanation.summary.strip().replace("\n", " ")
    head, sep, rest = summary.partition("confidence); ")
    if sep and head.startswith("'"):
        summary = rest
    if summary:
        return summary
    for c in tag.explanation.contributions:
        for ev in c.evidence:
            if ev.kind == "neighbour":
                return f"{c.scorer}: like '{ev.title}' ({ev.similarity:.2f})"
            if ev.kind == "term":
                return f"{c.scorer}: '{ev.term}' in {ev.field}"
            return f"{c.scorer}: close to '{ev.tag_text}' ({ev.similarity:.2f})"
    return ", ".join(tag.scorers)


def format_suggestions(event: TagSuggestionsPublished, top: int = 5, artwork: ArtworkMetadata | None = None) -> str:
    """The artwork, then its top tags with confidence, each with its reason on the next line.

    ``artwork``: the record the suggestions answer (its revision), when the reader has it
    (the demo published it; ``arttag tail`` reads the artwork topics). It gives the title and
    the reason ``arttag suggest`` prints (:func:`arttag.model.readable.reason`). A suggestion
    event itself carries no title, so without the record the line names the artwork by id
    and the reason is the event's summary. Nothing is cut."""
    title = f" '{artwork.title}'" if artwork is not None else ""
    lines = [f"artwork {event.artwork_id}{title} rev {event.revision} · model {event.model_version} "
             f"· {len(event.suggestions)} suggestions"]
    for tag in event.suggestions[:top]:
        mark = " (already assigned)" if tag.already_assigned else ""
        lines.append(f"  {tag.confidence:4.0%}  {tag.label}{mark}")
        lines.append(f"        {reason(tag, artwork) if artwork is not None else _summary_reason(tag)}")
    return "\n".join(lines)


def artwork_answered(event: TagSuggestionsPublished, catalogue: LatestArtworks | None) -> ArtworkMetadata | None:
    """The record ``event`` answers, from ``catalogue`` (the artwork topics as read so far):
    only that revision, as another one may have other words or another title."""
    record = catalogue.get(event.artwork_id) if catalogue is not None else None
    return record.artwork if record is not None and record.revision == event.revision else None


def format_dead_letter(dead: DeadLetter, width: int = 110) -> str:
    raw = dead.original_value() or b""
    preview = raw[:40].decode("utf-8", errors="replace").replace("\n", " ")
    return (f"dead letter from {dead.topic}[{dead.partition}]@{dead.offset} ({dead.error_type}): "
            f"{dead.error}"[:width] + f"\n  original bytes ({len(raw)}): {preview!r}")


def format_record(topic_kind: Which, value: bytes | None, top: int = 5,
                  catalogue: LatestArtworks | None = None,
                  artwork_of: Callable[[TagSuggestionsPublished], ArtworkMetadata | None] | None = None) -> str:
    """A record of an output topic for a person; suggestions with the titles and reasons of
    the artworks ``catalogue`` holds (:func:`format_suggestions`), or that ``artwork_of(event)``
    gives when the caller holds the records itself (the demo published them)."""
    if not value:
        return "(tombstone)"
    try:
        # extra="ignore": a newer worker of the same version may add an optional field
        if topic_kind == "dead-letters":
            return format_dead_letter(DeadLetter.model_validate_json(value, extra="ignore"))
        event = TagSuggestionsPublished.model_validate_json(value, extra="ignore")
        artwork = artwork_of(event) if artwork_of is not None else artwork_answered(event, catalogue)
        return format_suggestions(event, top=top, artwork=artwork)
    except ValueError:
        return f"(unreadable record) {value[:80]!r}"


def follow(
    kafka: KafkaSettings,
    which: Iterable[Which],
    *,
    from_beginning: bool = False,
    max_records: int | None = None,
    timeout_s: float | None = None,
    idle_timeout_s: float | None = None,
    on_record: Callable[[Which, bytes | None, str], None],
    stop: Callable[[], bool] | None = None,
) -> int:
    """Call ``on_record(kind, value, where)`` for each record of the chosen output topics.

    Stops after ``max_records``, ``timeout_s`` in all, ``idle_timeout_s``
    without a record, or when ``stop()`` says so (all optional; without them it follows until interrupted).
    """
    topics = StreamTopics.for_prefix(kafka.topic_prefix)
    names = {"suggestions": topics.suggestions, "latest": topics.latest,
             "dead-letters": topics.dead_letters}
    kind_of = {names[w]: w for w in which}
    c = consumer(kafka)
    seen = 0
    started = last = time.monotonic()
    try:
        start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        c.assign([TopicPartition(t, p, start) for t in kind_of for p in partitions(c, t)])
        while True:
            now = time.monotonic()
            if timeout_s is not None and now - started > timeout_s:
                break
            if idle_timeout_s is not None and now - last > idle_timeout_s:
                break
            if stop is not None and stop():
                break
            for msg in c.consume(100, 0.5):
                if msg.error():
                    continue
                last = time.monotonic()
                on_record(kind_of[msg.topic()], msg.value(),
                          f"{msg.topic()}[{msg.partition()}]@{msg.offset()}")
                seen += 1
                if max_records is not None and seen >= max_records:
                    return seen
    finally:
        c.close()
    return seen

