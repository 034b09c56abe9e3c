"""Publishing a catalogue export as artwork events: progress, rate limit, resumable checkpoint."""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from arttag.catalogue.records import BadRow, CatalogueReport, iter_catalogue
from arttag.catalogue.text import content_hash
from arttag.errors import ArttagError
from arttag.events import ArtworkCreated, ArtworkMetadata, ArtworkUpdated, encode_event
from arttag.kafka import make_producer
from arttag.kafka.clients import flush_or_fail
from arttag.kafka.topics import ARTWORKS_CREATED, ARTWORKS_UPDATED, topic_name
from arttag.settings import KafkaSettings
from tqdm import tqdm

log = logging.getLogger(__name__)

_EVENT_NS = uuid.uuid5(uuid.NAMESPACE_URL, "urn:arttag:backfill")


def backfill_event_id(artwork_id: str, revision: int, metadata: ArtworkMetadata) -> str:
    """A UUID named by (artwork id, revision, content hash): the suggestion id's rule."""
    return str(uuid.uuid5(_EVENT_NS, f"{artwork_id}:{revision}:{content_hash(metadata)}"))


@dataclass
class BackfillReport:
    published: int = 0
    resumed_after_line: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)
    rows_read: int = 0
    elapsed_s: float = 0.0
    topic: str = ""

    @property
    def events_per_s(self) -> float:
        return self.published / self.elapsed_s if self.elapsed_s else 0.0


def _read_checkpoint(path: Path | None, catalogue: Path) -> int:
    if path is None or not path.exists():
        return 0
    data = json.loads(path.read_text())
    if data.get("catalogue") != str(catalogue.resolve()):
        raise ArttagError(f"checkpoint {path} belongs to {data.get('catalogue')}, not {catalogue}")
    return int(data["line"])


def _write_checkpoint(path: Path | None, catalogue: Path, line: int, published: int) -> None:
    if path is None:
        return
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps({"catalogue": str(catalogue.resolve()), "line": line,
                               "published": published}))
    tmp.replace(path)  # atomic: a crash leaves the old or the new checkpoint


def backfill(
    kafka: KafkaSettings,
    catalogue: str | Path,
    *,
    kind: Literal["created", "updated"] = "created",
    revision: int = 1,
    rate: float | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 2000,
    limit: int | None = None,
    progress: bool = True,
) -> BackfillReport:
    """Publish every good row of ``catalogue`` as an artwork event keyed by artwork id.

    The checkpoint file records the last catalogue line whose event Kafka has
    acknowledged; a rerun with the same checkpoint continues after it. Event ids
    are derived from the artwork id, revision and content hash (:func:`backfill_event_id`),
    so a row published twice (a crash between acknowledgement and checkpoint) carries the
    same id both times, and a changed row under the same revision does not.
    """
    catalogue = Path(catalogue)
    ckpt = Path(checkpoint) if checkpoint else None
    start_after = _read_checkpoint(ckpt, catalogue)
    topic = topic_name(ARTWORKS_CREATED if kind == "created" else ARTWORKS_UPDATED, kafka.topic_prefix)
    event_cls = ArtworkCreated if kind == "created" else ArtworkUpdated
    report = BackfillReport(resumed_after_line=start_after, topic=topic)
    catalogue_report = CatalogueReport()
    errors: list[str] = []

    def on_delivery(err, _msg) -> None:
        if err is not None:
            errors.append(str(err))

    p = make_producer(kafka, **{"linger.ms": 20})
    source = f"backfill:{catalogue.name}"
    started = time.monotonic()
    last_line = start_after
    bar = tqdm(desc=f"backfill {catalogue.name}", unit=" artworks", disable=not progress,
               initial=0, smoothing=0.1)
    try:
        for record in iter_catalogue(catalogue, catalogue_report):
            if record.line <= start_after:
                continue
            if limit is not None and report.published >= limit:
                break
            event = event_cls(
                event_id=backfill_event_id(record.artwork_id, revision, record.metadata),
                source=source, artwork_id=record.artwork_id, revision=revision,
                artwork=record.metadata,
            )
            while True:
                try:
                    p.produce(topic, key=record.artwork_id.encode(), value=encode_event(event),
                              on_delivery=on_delivery)
                    break
                except BufferError:  # local queue full: let deliveries drain
                    p.poll(0.1)
            p.poll(0)
            report.published += 1
            last_line = record.line
            bar.update(1)
            if rate:
                ahead = report.published / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
            if report.published % checkpoint_every == 0:
                flush_or_fail(p)
                if errors:
                    raise ArttagError(f"Kafka refused events: {errors[0]}")
                _write_checkpoint(ckpt, catalogue, last_line, report.published)
        flush_or_fail(p)
        if errors:
            raise ArttagError(f"Kafka refused events: {errors[0]}")
        _write_checkpoint(ckpt, catalogue, last_line, report.published)
    finally:
        bar.close()
    report.elapsed_s = time.monotonic() - started
    report.rows_read = catalogue_report.rows_read
    report.bad_rows = [b for b in catalogue_report.bad_rows if b.line > start_after]
    return report
