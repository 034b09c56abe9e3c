"""A tiny synthetic catalogue in Tate's format where the right tags are known.

Four themes (harbours, mountains, portraits, cathedrals) with their own words
and tags; one dev-split artwork carries a tag ("lighthouse") that no training
artwork has; and a few bad rows (missing title, wrong type, unknown field,
not JSON) follow the good ones. Tests and demos train on it in a second.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from typing import Any

from arttag.catalogue.split import split_of

PLACES = ["Dover", "Whitby", "Brighton", "Venice", "Dieppe", "Genoa", "Naples", "Calais", "Lucerne", "Rouen"]
PEOPLE = ["John Smith", "Mary Hill", "Lady Grey", "the Artist's Wife", "a Young Man", "Captain Cook"]

THEMES: dict[str, dict[str, Any]] = {
    "harbour": {
        "titles": ["Fishing Boats in {p} Harbour", "The Harbour at {p}", "{p} Harbour with Fishing Boats"],
        "tags": [(1, "harbour", "seascapes and coasts"), (2, "boat, fishing", "transport: water")],
        "artist": "Joseph Mallord William Turner", "medium": "Oil paint on canvas",
    },
    "mountain": {
        "titles": ["Mountain Peak above {p}", "The Mountains near {p}", "Snow on the Mountain, {p}"],
        "tags": [(3, "mountain", "landscape"), (4, "snow", "weather")],
        "artist": "John Robert Cozens", "medium": "Watercolour on paper",
    },
    "portrait": {
        "titles": ["Portrait of {q}", "{q}, Seated", "Portrait of {q} in a Hat"],
        "tags": [(5, "portrait", "portraits"), (6, "man", "adults")],
        "artist": "Thomas Gainsborough", "medium": "Oil paint on canvas",
    },
    "cathedral": {
        "titles": ["Interior of {p} Cathedral", "The Cathedral at {p}", "{p} Cathedral, West Front"],
        "tags": [(7, "cathedral", "religious buildings"), (8, "tower", "features")],
        "artist": "John Sell Cotman", "medium": "Graphite on paper",
    },
}
UNSEEN_TAG = (99, "lighthouse", "seascapes and coasts")
"""Carried only by one dev-split artwork: no training artwork has it."""


def _row(artwork_id: int, title: str, theme: dict[str, Any], tags: list[tuple[int, str, str]]) -> dict[str, Any]:
    return {
        "id": artwork_id, "title": title, "artists": [theme["artist"]], "year": 1800 + artwork_id % 50,
        "medium": theme["medium"], "classification": "painting",
        "tags": [{"id": i, "name": n, "parent": g} for i, n, g in tags],
    }


def synthetic_rows(per_theme: int = 60, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows, next_id = [], 1
    for theme in THEMES.values():
        for _ in range(per_theme):
            title = rng.choice(theme["titles"]).format(p=rng.choice(PLACES), q=rng.choice(PEOPLE))
            rows.append(_row(next_id, title, theme, theme["tags"]))
            next_id += 1
    while split_of(str(next_id)) != "dev":
        next_id += 1
    rows.append(_row(next_id, "The Lighthouse at Dover", THEMES["harbour"], [UNSEEN_TAG]))
    return rows


BAD_LINES = [
    json.dumps({"id": 90001, "artists": ["Nobody"]}),                       # missing title
    json.dumps({"id": 90002, "title": "Wrong", "artists": "Turner"}),       # wrong type
    json.dumps({"id": 90003, "title": "Odd", "colour": "red"}),             # unknown field
    "{not json",
]


def write_synthetic_catalogue(path: str | Path, per_theme: int = 60, bad_rows: bool = True) -> Path:
    """Write the catalogue (gzipped JSON lines if the name ends in .gz); bad rows come last."""
    path = Path(path)
    lines = [json.dumps(r) for r in synthetic_rows(per_theme)]
    if bad_rows:
        lines += BAD_LINES
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as fh:  # type: ignore[operator]
        fh.write("\n".join(lines) + "\n")
    return path
