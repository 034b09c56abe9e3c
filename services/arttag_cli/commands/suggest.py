"""``arttag suggest [FILE|FOLDER|-]``: explained tag suggestions for many artworks, with one model load.

Input: one JSON object, a JSON list, JSON lines, or a catalogue export (Tate-format JSON
lines), gzipped or not, from a file, from every such file of a folder (by name), or from
stdin (:mod:`arttag_cli.artwork_input`). Reasons are :func:`arttag.model.readable.reason`. Output: a table (the default on a
terminal), JSON lines (the default otherwise) or one JSON list. An artwork that cannot be
read gets an error of its own and the others are still suggested for; the exit status is
then 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from arttag.model.readable import full_evidence, reason

from arttag_cli.artwork_input import InputItem, read_artworks
from arttag_cli.options import fraction, int_range

BATCH = 64
MAX_LIMIT = 200  # SuggestOptions.limit's bound


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser(
        "suggest", help="suggest tags for artworks (JSON, JSON lines or a catalogue export; file or stdin)",
        description="Suggest tags for every artwork of FILE, of every artwork file of FOLDER, or of "
        "stdin, loading the model once. Each item is an ArtworkMetadata object (with an optional "
        "artwork_id), an artwork event, or a Tate-format catalogue row; a file is one JSON object, "
        "a JSON list or JSON lines, gzipped or not.",
    )
    s.add_argument("input", nargs="?", default="-", metavar="FILE|FOLDER",
                   help="artworks to tag: a file; a folder (its .json, .jsonl and .ndjson files, "
                   "gzipped or not, by name); '-' (the default) reads stdin")
    s.add_argument("--bundle", type=Path, default=None,
                   help="model bundle pointer or folder (default: ARTTAG_BUNDLE_DIR)")
    s.add_argument("--limit", type=int_range("--limit", 1, MAX_LIMIT), default=10,
                   help=f"at most this many suggestions per artwork, 1 to {MAX_LIMIT} (default 10)")
    s.add_argument("--min-confidence", type=fraction("--min-confidence"), default=0.0,
                   help="leave out suggestions below this confidence, 0 to 1 (default 0)")
    s.add_argument("--only-new", action="store_true", help="leave out tags the artwork already has")
    s.add_argument("--format", choices=("table", "json", "jsonl"), default=None,
                   help="table (default on a terminal), jsonl (one object per artwork; default otherwise) "
                   "or json (one list)")
    s.add_argument("--explain", choices=("none", "short", "full"), default="short",
                   help="short: a one-line reason per tag (default); full: every piece of evidence; none")
    s.add_argument("--json", action="store_const", const="json", dest="format",
                   help="the same as --format json")
    s.set_defaults(func=_suggest)


def _batches(items: Iterable[InputItem], size: int) -> Iterator[list[InputItem]]:
    batch: list[InputItem] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _record(item: InputItem, suggestions: list[Any] | None, model_version: str, explain: str) -> dict[str, Any]:
    out: dict[str, Any] = {"artwork_id": item.artwork_id, "input": item.where}
    if item.metadata is not None:
        out["title"] = item.metadata.title
    if item.warnings:
        out["warnings"] = item.warnings
    if item.error is not None:
        out["error"] = item.error
        return out
    out["model_version"] = model_version
    rows = []
    for s in suggestions or []:
        row = s.model_dump(mode="json")
        if explain == "none":
            row.pop("explanation")
        elif explain == "short":
            row["reason"] = reason(s, item.metadata)
            row.pop("explanation")
        else:
            row["reason"] = reason(s, item.metadata)
        rows.append(row)
    out["suggestions"] = rows
    return out


def _print_table(item: InputItem, suggestions: list[Any] | None, model_version: str, explain: str) -> None:
    if item.error is not None:
        return  # on stderr already
    print(f"{item.name}: '{item.metadata.title}' (model {model_version})")
    if not suggestions:
        print("    no suggestions")
    width = max((len(s.label) for s in suggestions or []), default=0)
    for i, s in enumerate(suggestions or [], 1):
        flag = "  [already assigned]" if s.already_assigned else ""
        print(f"{i:4d}. {s.label:<{width}}  {s.confidence:4.0%}  {s.tag_id:>6}  {s.group or ''}{flag}")
        if explain in ("short", "full"):
            print(f"        {reason(s, item.metadata)}")
        if explain == "full":
            for line in full_evidence(s):
                print(f"          {line}")
    print()


def _suggest(args: argparse.Namespace) -> int:
    from arttag.model.bundle import open_tagger
    from arttag.model.tagger import SuggestOptions
    from arttag.settings import CliSettings

    fmt = args.format or ("table" if sys.stdout.isatty() else "jsonl")
    options = SuggestOptions(limit=args.limit, min_confidence=args.min_confidence, only_new=args.only_new)
    items = read_artworks(args.input)
    first = next(items, None)
    settings = CliSettings()
    tagger = open_tagger(args.bundle or settings.bundle_dir, settings.encoder)
    failed = done = 0
    as_list: list[dict[str, Any]] = []

    def all_items() -> Iterator[InputItem]:
        if first is not None:
            yield first
        yield from items

    for batch in _batches(all_items(), BATCH):
        good = [item for item in batch if item.metadata is not None]
        results = iter(tagger.suggest([item.metadata for item in good], options)) if good else iter(())
        for item in batch:
            suggestions = next(results) if item.metadata is not None else None
            for warning in item.warnings:
                print(f"arttag suggest: warning: {item.name}: {warning}", file=sys.stderr)
            if item.error is not None:
                failed += 1
                print(f"arttag suggest: error: {item.name}: {item.error}", file=sys.stderr)
            else:
                done += 1
            if fmt == "table":
                _print_table(item, suggestions, tagger.model_version, args.explain)
            elif fmt == "jsonl":
                print(json.dumps(_record(item, suggestions, tagger.model_version, args.explain), ensure_ascii=False))
            else:
                as_list.append(_record(item, suggestions, tagger.model_version, args.explain))
        sys.stdout.flush()
    if fmt == "json":
        print(json.dumps(as_list, indent=2, ensure_ascii=False))
    if failed:
        print(f"arttag suggest: {done} artwork(s) tagged, {failed} could not be read (see above)", file=sys.stderr)
    return 1 if failed else 0
