"""Decisions as training data (``arttag train --decisions``): accepted tags become labels of
their artworks, rejected ones negatives for the re-ranker.

Rules (docs/curation.md, "Learning from decisions"):

- an artwork's labels are its catalogued tags plus its accepted tags, minus its rejected tags;
  a tag the catalogue's vocabulary does not hold is not added (counted as ``unknown_tags``);
  decisions about artworks the catalogue lacks are counted (``unknown_artworks``) and unused;
- a rejected tag of an artwork the re-ranker learns from (the ``rerank`` split) is a negative
  pair with weight ``negative_weight`` when the scorers propose it: a curator's "no" says more
  than a tag that is merely absent (catalogues miss tags).

Example::

    decisions, bad = read_decisions_file(Path("decisions.jsonl"))
    records, rejected, counts = apply_decisions(records, decisions)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from arttag.catalogue.records import CatalogueRecord
from arttag.catalogue.vocabulary import Vocabulary
from arttag.errors import ArttagError, EventDecodeError
from arttag.events import AssignedTag, TagDecisionsChanged, decode_event
from arttag.settings import KafkaSettings

log = logging.getLogger(__name__)


def read_decisions_file(path: Path) -> tuple[dict[str, TagDecisionsChanged], int]:
    """``TagDecisionsChanged`` records of a JSON Lines file (one per line, blank lines ignored),
    the newest per artwork (the last line, as compaction keeps the last record), and how many
    lines did not decode (each logged with its line number and skipped)."""
    found: dict[str, TagDecisionsChanged] = {}
    bad = 0
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise ArttagError(f"cannot read decisions from {path}: {exc}", path=str(path)) from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = decode_event(line, TagDecisionsChanged, ignore_unknown=True)
        except EventDecodeError as exc:
            bad += 1
            log.warning("%s line %d skipped: %s", path, number, str(exc)[:300])
            continue
        found[record.artwork_id] = record
    return found, bad


def read_decisions_topic(kafka: KafkaSettings, topic: str | None = None) -> dict[str, TagDecisionsChanged]:
    """The newest decisions per artwork on the decisions topic (default ``<prefix>tags.decisions.v1``), read to its end."""
    from arttag.curation.learning import LatestDecisions, decode_decisions_record
    from arttag.kafka.follower import CompactedFollower
    from arttag.kafka.topics import TAG_DECISIONS, topic_name

    table = LatestDecisions()
    follower = CompactedFollower(kafka, topic or topic_name(TAG_DECISIONS, kafka.topic_prefix), table,
                                 decode_decisions_record, name="decisions")
    try:
        follower.load(timeout_s=600)
    finally:
        follower.stop()
    return {key: record.decisions for key, record in table.items()}


def read_decisions(source: str, kafka: KafkaSettings) -> tuple[dict[str, TagDecisionsChanged], dict[str, Any]]:
    """Decisions from ``source``: ``kafka:`` (the decisions topic under the Kafka settings),
    ``kafka:<topic>`` (that topic), or the path of a JSON Lines file; and what was read."""
    if source.startswith("kafka:"):
        topic = source[len("kafka:"):] or None
        decisions = read_decisions_topic(kafka, topic)
        return decisions, {"source": source, "records": len(decisions), "bad_records": 0}
    decisions, bad = read_decisions_file(Path(source))
    return decisions, {"source": source, "records": len(decisions), "bad_records": bad}


def apply_decisions(records: Sequence[CatalogueRecord], decisions: Mapping[str, TagDecisionsChanged],
                    ) -> tuple[list[CatalogueRecord], dict[str, set[str]], dict[str, int]]:
    """The catalogue with the decisions' labels applied (the module's rules), the rejected tag ids
    per artwork, and counts: ``artworks`` (with decisions and in the catalogue),
    ``accepted_labels`` (tags added), ``rejected_labels_removed`` (catalogued tags taken away),
    ``unknown_tags``, ``unknown_artworks``."""
    vocabulary = Vocabulary.from_records(records)
    by_id = {r.artwork_id for r in records}
    counts = {"artworks": 0, "accepted_labels": 0, "rejected_labels_removed": 0, "unknown_tags": 0,
              "unknown_artworks": sum(1 for a in decisions if a not in by_id)}
    rejected: dict[str, set[str]] = {}
    out = []
    for record in records:
        decided = decisions.get(record.artwork_id)
        if decided is None:
            out.append(record)
            continue
        counts["artworks"] += 1
        no = {d.tag_id for d in decided.rejected}
        if no:
            rejected[record.artwork_id] = no
        tags = [t for t in record.metadata.tags if t.id not in no]
        counts["rejected_labels_removed"] += len(record.metadata.tags) - len(tags)
        held = {t.id for t in tags}
        for d in decided.accepted:
            if d.tag_id in held:
                continue
            if d.tag_id not in vocabulary:
                counts["unknown_tags"] += 1
                continue
            tag = vocabulary.get(d.tag_id)
            tags.append(AssignedTag(id=tag.id, label=tag.label, group=tag.group))
            held.add(d.tag_id)
            counts["accepted_labels"] += 1
        out.append(replace(record, metadata=record.metadata.model_copy(update={"tags": tags})))
    return out, rejected, counts
