"""``arttag backfill CATALOGUE``: publish a catalogue export as artwork events."""

from __future__ import annotations

import argparse
from pathlib import Path

from arttag.settings import CliSettings

from arttag_cli.options import int_range, positive


def register(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("backfill", help="publish a catalogue export (JSON lines, .gz ok) as artwork events")
    b.add_argument("catalogue", type=Path, help="catalogue export to publish (Tate-format JSON lines, optionally gzipped)")
    b.add_argument("--rate", type=positive("--rate"), default=None, help="at most this many events per second")
    b.add_argument("--checkpoint", type=Path, default=None,
                   help="resume file: the last acknowledged line is kept there; a rerun continues after it")
    b.add_argument("--as-updates", action="store_true", help="publish ArtworkUpdated instead of ArtworkCreated")
    b.add_argument("--revision", type=int_range("--revision", 0), default=1, help="catalogue revision the events carry (default 1)")
    b.add_argument("--limit", type=int_range("--limit", 1), default=None, help="stop after this many events")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.set_defaults(func=_backfill)


def _backfill(args: argparse.Namespace) -> int:
    from arttag_stream.backfill import backfill

    settings = CliSettings()
    report = backfill(settings.kafka, args.catalogue, kind="updated" if args.as_updates else "created",
                      revision=args.revision, rate=args.rate, checkpoint=args.checkpoint,
                      limit=args.limit, progress=not args.no_progress)
    resumed = f" (resumed after line {report.resumed_after_line})" if report.resumed_after_line else ""
    print(f"published {report.published} events to {report.topic} in {report.elapsed_s:.1f}s "
          f"({report.events_per_s:.0f}/s){resumed}; {len(report.bad_rows)} bad rows")
    for bad in report.bad_rows[:20]:
        print(f"  line {bad.line}: {bad.error}")
    if len(report.bad_rows) > 20:
        print(f"  ... and {len(report.bad_rows) - 20} more")
    return 0
