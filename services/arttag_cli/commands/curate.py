"""``arttag curate``: fold curators' and the public's feedback into decided tags."""

from __future__ import annotations

import argparse
import signal
import threading


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("curate", help="fold feedback into accepted and rejected tags (tags.decisions.v1)")
    p.add_argument("--until-caught-up", action="store_true",
                   help="stop once the feedback topic is read to its end (a rebuild or a check)")
    p.add_argument("--group", default=None, help="consumer group (default: ARTTAG_CURATE_GROUP, arttag-curate)")
    p.set_defaults(func=_curate)


def _curate(args: argparse.Namespace) -> int:
    from arttag.settings import CurateSettings
    from arttag_curate.processor import CurateProcessor

    settings = CurateSettings()
    if args.group:
        settings = settings.model_copy(update={"curate_group": args.group})
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        report = CurateProcessor(settings).run(stop=stop, until_caught_up=args.until_caught_up)
    except KeyboardInterrupt:
        return 130
    print(f"feedback events: {report.feedback_read}, duplicates: {report.duplicates}, "
          f"dead-lettered: {report.dead_lettered}, decisions records published: {report.published}")
    return 0
