"""Entry point of the ``arttag`` console script.

Each command group lives in its own module under ``arttag_cli.commands`` and
exposes ``register(subparsers)``; a command sets ``func(args) -> int``.
Errors derived from :class:`arttag.errors.ArttagError` become a one-line
message and exit status 2; nothing else is caught.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from arttag.errors import ArttagError

COMMAND_MODULES = (
    "schemas",
    "topics",
    "model",
    "train",
    "suggest",
    "stream",
    "backfill",
    "api",
    "audit",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arttag", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"arttag_cli.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"arttag_cli.commands.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except ArttagError as exc:
        print(f"arttag {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
