"""arttag suggests subject tags for artworks from their catalogue metadata, with reasons.

Train a model bundle from a catalogue export, suggest tags for artworks from a file, run
the stream worker (artwork events in from Kafka, explained suggestions out) or the HTTP
API, and audit a catalogue's tags. `arttag COMMAND --help` describes each command; the
reference is docs/cli.md.

Each command group lives in its own module under ``arttag_cli.commands`` and
exposes ``register(subparsers)``; a command sets ``func(args) -> int``.
Errors derived from :class:`arttag.errors.ArttagError` become a one-line
message and exit status 2; nothing else is caught.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
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
    "curate",
)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("arttag")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="arttag", description=__doc__.split("\n\nEach command")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"arttag {_version()}",
                        help="print the installed version and exit")
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
    except BrokenPipeError:
        # the reader went away (`arttag suggest ... | head`): stop quietly, as Unix tools do;
        # stdout is pointed at devnull so the interpreter's final flush cannot fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
