"""Likely overlooked tags: the model's confident suggestions that the human tags lack, ranked for review.

Only tagged artworks count: on an untagged artwork every suggestion is new,
which is a coverage gap rather than an oversight. Run it on artworks the
model did not learn from (the dev split), or its suggestions echo the tags
it was trained on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from arttag.catalogue.records import CatalogueRecord
from arttag.events import TagSuggestion
from arttag.quality.audit.neighbours import histogram


def overlooked_tags(
    records: Sequence[CatalogueRecord],
    suggestions: Sequence[Sequence[TagSuggestion]],
    min_confidence: float = 0.5,
    top: int = 200,
) -> dict[str, Any]:
    candidates = []
    per_tag: Counter[str] = Counter()
    labels: dict[str, str] = {}
    reviewed = 0
    for record, ranked in zip(records, suggestions):
        if not record.metadata.tags:
            continue
        reviewed += 1
        assigned = {t.id for t in record.metadata.tags}
        for rank, s in enumerate(ranked, start=1):
            if s.already_assigned or s.tag_id in assigned or s.confidence < min_confidence:
                continue
            per_tag[s.tag_id] += 1
            labels[s.tag_id] = s.label
            candidates.append({
                "artwork_id": record.artwork_id,
                "title": record.metadata.title,
                "tag_id": s.tag_id,
                "label": s.label,
                "group": s.group,
                "confidence": round(s.confidence, 4),
                "rank": rank,
                "assigned": sorted(t.label or t.id for t in record.metadata.tags),
                "explanation": s.explanation.summary,
            })
    candidates.sort(key=lambda c: (-c["confidence"], c["rank"], c["artwork_id"], c["tag_id"]))
    return {
        "skipped": False,
        "min_confidence": min_confidence,
        "artworks_reviewed": reviewed,
        "count": len(candidates),
        "confidence_histogram": histogram([c["confidence"] for c in candidates]),
        "artworks_with_candidates": len({c["artwork_id"] for c in candidates}),
        "shown": min(top, len(candidates)),
        "candidates": candidates[:top],
        "most_overlooked_tags": [
            {"tag_id": t, "label": labels[t], "count": n} for t, n in per_tag.most_common(30)
        ],
    }
