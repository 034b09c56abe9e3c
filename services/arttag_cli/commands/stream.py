"""``arttag stream | replay | tail | demo``: the stream worker and the jobs around it."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from arttag.settings import StreamSettings

from arttag_cli.options import int_range, positive


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--encoder", choices=("onnx", "hashing"), default=None,
                   help="encoder to load the bundle with (default: ARTTAG_ENCODER_KIND, onnx)")
    p.add_argument("--bundle", type=Path, default=None, help="model bundle (default: ARTTAG_BUNDLE_DIR)")


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("stream", help="run the stream worker (artwork events in, suggestions out)")
    _model_args(s)
    s.add_argument("--group", default=None, help="consumer group (default: ARTTAG_CONSUMER_GROUP)")
    s.set_defaults(func=_stream)

    r = sub.add_parser("replay", help="reprocess artwork topics under a model version, or re-submit dead letters")
    what = r.add_mutually_exclusive_group(required=True)
    what.add_argument("--from-beginning", action="store_true", help="every artwork event")
    what.add_argument("--since", type=_timestamp, metavar="TIMESTAMP",
                      help="artwork events from this time on (ISO 8601, e.g. 2026-11-28T12:00Z)")
    what.add_argument("--dead-letters", action="store_true",
                      help="re-submit dead letters to their original topics (each once)")
    r.add_argument("--model-version", default=None,
                   help="label of the outputs and of the replay's consumer group (default: the bundle's)")
    r.add_argument("--group", default=None, help="consumer group of the replay")
    r.add_argument("--only-topic", default=None, help="with --dead-letters: only those from this topic")
    r.add_argument("--dry-run", action="store_true", help="publish nothing and commit nothing: count what a replay (or --dead-letters) would do")
    _model_args(r)
    r.set_defaults(func=_replay)

    t = sub.add_parser("tail", help="print output records as they arrive")
    t.add_argument("which", choices=("suggestions", "latest", "dead-letters"),
                   help="suggestions: every suggestion event; latest: the compacted latest-per-artwork topic; "
                   "dead-letters: messages the worker could not process")
    t.add_argument("--from-beginning", action="store_true", help="start at the oldest record kept, not at new ones")
    t.add_argument("--max", type=int_range("--max", 1), default=None, help="stop after this many records")
    t.add_argument("--timeout", type=positive("--timeout"), default=None, help="stop after this many seconds")
    t.add_argument("--top", type=int_range("--top", 1), default=5, help="tags shown per artwork (default 5)")
    t.add_argument("--json", action="store_true", help="print the raw JSON records")
    t.add_argument("--no-titles", action="store_true",
                   help="do not read the artwork topics (a faster start on a large catalogue): "
                   "artworks are then named by id and each tag's reason is the event's summary")
    t.set_defaults(func=_tail)

    d = sub.add_parser("demo", help="the main job end to end: topics, model, bundle, worker, samples in, suggestions out")
    d.add_argument("--encoder", choices=("onnx", "hashing"), default="onnx",
                   help="onnx (default): the real model (fetched and exported if missing); hashing: fast, no model")
    d.add_argument("--count", type=int_range("--count", 1), default=20, help="sample artworks to publish (default 20)")
    d.add_argument("--timeout", type=positive("--timeout"), default=300.0,
                   help="seconds to wait for every suggestion before giving up (default 300)")
    d.add_argument("--keep-topics", action="store_true", help="keep the demo's topics afterwards")
    d.set_defaults(func=_demo)


def _timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text}") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _settings(args: argparse.Namespace) -> StreamSettings:
    settings = StreamSettings()
    update = {}
    if getattr(args, "encoder", None):
        update["encoder_kind"] = args.encoder
    if getattr(args, "bundle", None):
        update["bundle_dir"] = args.bundle
    if getattr(args, "group", None):
        update["consumer_group"] = args.group
    return settings.model_copy(update=update) if update else settings


def _stream(args: argparse.Namespace) -> int:
    from arttag_stream.runner import load_stream_tagger, run_worker

    settings = _settings(args)
    return run_worker(settings, load_stream_tagger(settings))


def _replay(args: argparse.Namespace) -> int:
    from arttag_stream.replay import replay_artworks, replay_dead_letters

    settings = StreamSettings()
    if args.dead_letters:
        report = replay_dead_letters(settings, group=args.group, only_topic=args.only_topic,
                                     dry_run=args.dry_run)
        verb = "would re-submit" if args.dry_run else "re-submitted"
        print(f"{verb} {report.resubmitted} dead letters {report.by_topic}; "
              f"{report.unreadable} unreadable records, {report.unavailable} originals no longer available")
        return 0
    from arttag_stream.runner import load_stream_tagger

    settings = _settings(args)
    report = replay_artworks(settings, load_stream_tagger(settings, bulk=True), model_version=args.model_version,
                             since=args.since, group=args.group, dry_run=args.dry_run)
    print(f"{'would replay' if args.dry_run else 'replayed'} {report.read} events in {report.elapsed_s:.1f}s (group {report.group}): "
          f"{report.suggestions} suggestions, {report.latest} latest updates, "
          f"{report.skipped} already answered, {report.dead_letters} dead letters, "
          f"{report.invalid} undecodable (dead-lettered before)")
    return 0


def _tail(args: argparse.Namespace) -> int:
    from arttag_stream.tail import follow, format_record

    settings = StreamSettings()
    catalogue, follower = None, None
    if args.which != "dead-letters" and not args.json and not args.no_titles:
        # A suggestion event carries no title: the artwork topics have the records, read to
        # their end now and followed while tailing, so the artworks are named by title and
        # each tag gets the reason `arttag suggest` prints.
        from arttag.errors import ArttagError
        from arttag.kafka.artworks import CatalogueFollower, LatestArtworks
        from confluent_kafka import KafkaException

        catalogue = LatestArtworks()
        follower = CatalogueFollower(settings.kafka, catalogue, poll_s=0.1)
        try:
            follower.load()
            follower.start()
        except (ArttagError, KafkaException) as exc:
            print(f"arttag tail: no titles (cannot read the artwork topics: {exc})", file=sys.stderr)
            follower.stop()
            catalogue, follower = None, None

    def show(kind, value, where) -> None:
        if args.json:
            print(value.decode("utf-8", errors="replace") if value else "null")
        else:
            print(f"{where}  " + format_record(kind, value, top=args.top, catalogue=catalogue), end="\n\n")
        sys.stdout.flush()

    try:
        follow(settings.kafka, [args.which], from_beginning=args.from_beginning, max_records=args.max,
               timeout_s=args.timeout, on_record=show)
    finally:
        if follower is not None:
            follower.stop()
    return 0


def _demo(args: argparse.Namespace) -> int:
    from arttag_stream.demo import run_demo

    def say(text: str) -> None:
        print(text, flush=True)

    return run_demo(StreamSettings(), encoder_kind=args.encoder, count=args.count,
                    timeout_s=args.timeout, keep_topics=args.keep_topics, say=say)
