"""``arttag curate [rebuild]``: fold curators' and the public's feedback into decided tags."""

from __future__ import annotations

import argparse
import signal
import threading


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("curate", help="fold feedback into accepted and rejected tags (tags.decisions.v1) "
                       "and the curation database")
    p.add_argument("--until-caught-up", action="store_true",
                   help="stop once the feedback topic is read to its end (a rebuild or a check)")
    p.add_argument("--group", default=None, help="consumer group (default: ARTTAG_CURATE_GROUP, arttag-curate)")
    p.set_defaults(func=_curate)
    s = p.add_subparsers(dest="action", metavar="ACTION")
    r = s.add_parser("rebuild", help="drop and recreate the curation database from the feedback topic "
                     "(stop `arttag curate` first)")
    r.add_argument("--database-url", default=None,
                   help="the database to rebuild (default: ARTTAG_CURATION_DATABASE_URL)")
    r.set_defaults(func=_rebuild)


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


def _rebuild(args: argparse.Namespace) -> int:
    from arttag.curation.store import ContributorRow, CurationStore, TagRow, VoteRow
    from arttag.settings import CurateSettings
    from arttag_curate.processor import rebuild

    settings = CurateSettings()
    store = CurationStore.open(args.database_url or settings.curation_database_url)
    try:
        report = rebuild(settings, store)
        print(f"rebuilt {store.url}: {report.feedback_read} feedback events ({report.duplicates} duplicates, "
              f"{report.dead_lettered} unreadable), {store.count(TagRow)} artwork tags, "
              f"{store.count(VoteRow)} public votes, {store.count(ContributorRow)} contributors")
    finally:
        store.close()
    return 0
