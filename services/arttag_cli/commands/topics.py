"""``arttag topics create|list``: the Kafka topics arttag uses."""

from __future__ import annotations

import argparse

from arttag.kafka.topics import TOPICS, topic_name
from arttag.settings import CliSettings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("topics", help="Kafka topics")
    s = p.add_subparsers(dest="action", required=True)
    c = s.add_parser("create", help="create arttag's topics (idempotent)")
    c.set_defaults(func=_create)
    ls = s.add_parser("list", help="list arttag's topics and what each carries")
    ls.set_defaults(func=_list)


def _create(args: argparse.Namespace) -> int:
    from arttag.kafka.admin import create_topics

    settings = CliSettings()
    for name, outcome in create_topics(settings.kafka).items():
        print(f"{name}: {outcome}")
    return 0


def _list(args: argparse.Namespace) -> int:
    settings = CliSettings()
    for spec in TOPICS:
        print(f"{topic_name(spec.name, settings.kafka.topic_prefix)}\t{spec.description}")
    return 0
