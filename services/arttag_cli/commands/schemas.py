"""``arttag schemas export``: write the events' JSON Schemas."""

from __future__ import annotations

import argparse
from pathlib import Path

from arttag.schemas import export_schemas


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schemas", help="event JSON Schemas")
    s = p.add_subparsers(dest="action", required=True)
    e = s.add_parser("export", help="write one JSON Schema per event into a folder")
    e.add_argument("--out", type=Path, default=Path("schemas"), help="folder (default: schemas/)")
    e.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    for path in export_schemas(args.out):
        print(path)
    return 0
