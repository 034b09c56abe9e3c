"""Benchmark figures quoted in the prose of docs/*.md, filled in from bench/results/*.json.

A doc quotes a figure as

    one worker <!-- figure scaleout.json headline.single_worker_events_per_s .1f -->34.3<!-- /figure --> artworks/s

naming the results file, the dotted path of the value in it (a list item by its index) and
a Python format spec; the comments do not show in the rendered page. A quoted figure must
not begin a line (Markdown would read that line as raw HTML). ``python
bench/render_docs.py`` rewrites the text between the two comments, and ``--check`` (and
tests/test_docs_generated.py) fails when it is not what the results say, so a figure quoted
in the prose cannot drift from the results any more than docs/benchmarks.md can. Only the
standard library is used.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

FIGURE = re.compile(r"<!-- figure (?P<file>[\w.-]+\.json) (?P<path>[\w.-]+) (?P<spec>\S+) -->"
                    r"(?P<text>[^<\n]*)<!-- /figure -->")


class FigureError(ValueError):
    """A quoted figure names a results file or a value that does not exist, or a format that does not fit."""


def figure_value(results_dir: Path, file: str, path: str) -> Any:
    """The value at the dotted ``path`` of the results file ``file``."""
    try:
        value = json.loads((results_dir / file).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FigureError(f"no results file {file}") from None
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise FigureError(f"{file} has no {path}")
    return value


def fill_figures(markdown: str, results_dir: Path) -> str:
    """``markdown`` with every quoted figure written from the results in ``results_dir``."""

    def filled(m: re.Match) -> str:
        value = figure_value(results_dir, m["file"], m["path"])
        try:
            text = format(value, m["spec"])
        except (TypeError, ValueError) as exc:
            raise FigureError(f"{m['file']} {m['path']} = {value!r} does not fit {m['spec']!r}: {exc}") from None
        return f"<!-- figure {m['file']} {m['path']} {m['spec']} -->{text}<!-- /figure -->"

    for m in FIGURE.finditer(markdown):
        if not markdown[markdown.rfind("\n", 0, m.start()) + 1:m.start()].strip():
            # CommonMark reads a line that opens with "<!--" as an HTML block, ending the paragraph.
            raise FigureError(f"{m['file']} {m['path']} begins a line: put a word before it")
    return FIGURE.sub(filled, markdown)


def docs_quoting_figures(docs_dir: Path) -> list[Path]:
    """The Markdown files in ``docs_dir`` that quote at least one figure."""
    return sorted(p for p in docs_dir.glob("*.md") if FIGURE.search(p.read_text(encoding="utf-8")))
