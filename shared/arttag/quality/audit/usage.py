"""Tag usage: the long tail (tags used once, at most five times), the most used tags, use by acquisition decade."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from arttag.catalogue.records import CatalogueRecord

USAGE_BINS = (
    ("1", 1, 1), ("2", 2, 2), ("3-5", 3, 5), ("6-10", 6, 10), ("11-20", 11, 20), ("21-50", 21, 50),
    ("51-100", 51, 100), ("101-500", 101, 500), ("501-1000", 501, 1000), (">1000", 1001, 10**12),
)


def tag_table(records: Sequence[CatalogueRecord]) -> dict[str, dict[str, Any]]:
    """Tag id -> label, group and usage count, over the records given."""
    table: dict[str, dict[str, Any]] = {}
    for r in records:
        for t in r.metadata.tags:
            row = table.setdefault(t.id, {"tag_id": t.id, "label": t.label or t.id, "group": t.group, "usage": 0})
            row["usage"] += 1
    return table


def tag_usage(
    records: Sequence[CatalogueRecord], top: int = 30, tail_max: int = 5
) -> dict[str, Any]:
    table = tag_table(records)
    rows = sorted(table.values(), key=lambda t: (-t["usage"], t["label"]))
    once = [t for t in rows if t["usage"] == 1]
    tail = [t for t in rows if t["usage"] <= tail_max]
    total_uses = sum(t["usage"] for t in rows)
    by_usage = Counter(t["usage"] for t in rows)

    decades: dict[int | None, dict[str, Any]] = defaultdict(
        lambda: {"artworks": 0, "tagged": 0, "tag_uses": 0, "tags": set()}
    )
    for r in records:
        year = r.metadata.acquisition_year
        d = decades[(year // 10) * 10 if year is not None else None]
        d["artworks"] += 1
        d["tagged"] += bool(r.metadata.tags)
        d["tag_uses"] += len(r.metadata.tags)
        d["tags"].update(t.id for t in r.metadata.tags)
    by_decade = [
        {
            "decade": None if key is None else f"{key}s",
            "artworks": d["artworks"],
            "tagged": d["tagged"],
            "tagged_share": round(d["tagged"] / d["artworks"], 4),
            "mean_tags": round(d["tag_uses"] / d["artworks"], 3),
            "distinct_tags": len(d["tags"]),
        }
        for key, d in sorted(decades.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))
    ]
    return {
        "distinct_tags": len(rows),
        "tag_uses": total_uses,
        "used_once": {"count": len(once), "tags": once},
        "long_tail": {
            "max_usage": tail_max,
            "count": len(tail),
            "share_of_tags": round(len(tail) / len(rows), 4) if rows else 0.0,
            "share_of_uses": round(sum(t["usage"] for t in tail) / total_uses, 4) if total_uses else 0.0,
            "tags": tail,
        },
        "usage_histogram": {str(k): by_usage[k] for k in sorted(by_usage)},
        "usage_bins": {
            label: sum(n for k, n in by_usage.items() if lo <= k <= hi) for label, lo, hi in USAGE_BINS
        },
        "most_used": rows[:top],
        "by_acquisition_decade": by_decade,
    }
