"""Runs every audit check over one catalogue file and gathers their results in one JSON-ready dict."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from arttag.catalogue.records import load_catalogue
from arttag.catalogue.split import split_of
from arttag.encoders.base import TextEncoder
from arttag.encoders.hashing import HashingEncoder
from arttag.model.tagger import Tagger
from arttag.quality.audit.consistency import labelling_consistency
from arttag.quality.audit.coverage import coverage
from arttag.quality.audit.duplicates import near_duplicate_tags
from arttag.quality.audit.learnability import learnability
from arttag.quality.audit.overlooked import overlooked_tags
from arttag.quality.audit.predictions import suggest_records
from arttag.quality.audit.usage import tag_usage

log = logging.getLogger(__name__)

NO_BUNDLE = "skipped: no model bundle given (run `arttag audit ... --bundle DIR` to include this section)"


@dataclass(frozen=True)
class AuditOptions:
    tag_similarity: float = 0.85
    """Cosine between tag-label embeddings above which two tags are reported as near-duplicates."""
    artwork_similarity: float = 0.95
    """Cosine between artwork-text embeddings above which two artworks of a block are near-identical."""
    prefilter_similarity: float = 0.9
    """Cosine of hashed words (group title left out) from which two artworks of a block are compared."""
    min_confidence: float = 0.5
    """Confidence from which a suggestion missing from the human tags is a likely overlooked tag."""
    learn_threshold: float = 0.5
    """Confidence from which a suggestion counts as predicted in the dev-set precision and recall."""
    overlooked_on: Literal["dev", "all"] = "dev"
    """Look for overlooked tags on the dev split (unseen by the model) or on every artwork."""
    semantic_tags: bool = True
    """Compare tag labels by embedding; off for the hashing encoder, whose collisions make it noise."""
    suggest_limit: int = 20
    batch_size: int = 256
    progress: bool = True


def run_audit(
    catalogue: str | Path,
    encoder: TextEncoder | None,
    tagger: Tagger | None = None,
    options: AuditOptions | None = None,
) -> dict[str, Any]:
    """The whole audit of ``catalogue``; model sections are skipped (with a note) without ``tagger``."""
    options = options or AuditOptions()
    timings: dict[str, float] = {}
    started = time.perf_counter()

    def timed(name: str, fn, *args, **kwargs):
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        timings[name] = round(time.perf_counter() - t0, 2)
        log.info("audit %s done in %.1fs", name, timings[name])
        return result

    records, report = timed("load", load_catalogue, catalogue)
    audit: dict[str, Any] = {
        "catalogue": str(catalogue),
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "encoder": getattr(encoder, "name", None),
        "model_version": getattr(tagger, "model_version", None),
        "options": asdict(options),
        "rows": {
            "read": report.rows_read,
            "good": len(records),
            "bad": len(report.bad_rows),
            "bad_rows": [{"line": b.line, "error": b.error} for b in report.bad_rows[:500]],
        },
    }
    audit["coverage"] = timed("coverage", coverage, records)
    if records:
        from arttag.quality.profile import build_reference_profile

        audit["reference_profile"] = build_reference_profile(records, source=str(catalogue)).to_dict()
    audit["usage"] = timed("usage", tag_usage, records)
    audit["duplicates"] = timed(
        "duplicates", near_duplicate_tags, records, encoder if options.semantic_tags else None,
        threshold=options.tag_similarity, batch_size=options.batch_size, progress=options.progress,
    )
    if encoder is not None:
        audit["consistency"] = timed(
            "consistency", labelling_consistency, records, encoder,
            threshold=options.artwork_similarity, batch_size=options.batch_size, progress=options.progress,
            prefilter=HashingEncoder(dim=1024), prefilter_threshold=options.prefilter_similarity,
        )
    else:
        audit["consistency"] = {"skipped": True, "note": "skipped: no encoder"}

    if tagger is None:
        audit["overlooked"] = {"skipped": True, "note": NO_BUNDLE}
        audit["learnability"] = {"skipped": True, "note": NO_BUNDLE}
    else:
        tagged = [r for r in records if r.metadata.tags]
        dev_mask = [split_of(r.artwork_id) == "dev" for r in tagged]
        scope = tagged if options.overlooked_on == "all" else [r for r, d in zip(tagged, dev_mask) if d]
        suggestions = timed(
            "suggest", suggest_records, tagger, scope, limit=options.suggest_limit,
            progress=options.progress,
        )
        audit["overlooked"] = timed(
            "overlooked", overlooked_tags, scope, suggestions, min_confidence=options.min_confidence,
        )
        audit["overlooked"]["scope"] = options.overlooked_on
        if options.overlooked_on == "all":
            pairs = [(r, s) for r, s, d in zip(scope, suggestions, dev_mask) if d]
        else:
            pairs = list(zip(scope, suggestions))
        train_usage: Counter[str] = Counter(
            t.id for r in records if split_of(r.artwork_id) != "dev" for t in r.metadata.tags
        )
        labels = {t.id: t.label or t.id for r in records for t in r.metadata.tags}
        per_tag = audit["consistency"].get("per_tag", {})
        inconsistency = {
            t: v["inconsistency"] for t, v in per_tag.items() if v["split"] + v["agreed"] >= 3
        }
        dup = audit["duplicates"]
        near = {t["tag_id"] for g in dup["lexical"]["groups"] for t in g["tags"]}
        near |= {t["tag_id"] for p in dup["semantic"]["pairs"] for t in p["tags"]}
        audit["learnability"] = timed(
            "learnability", learnability, [r for r, _ in pairs], [s for _, s in pairs],
            train_usage, labels, inconsistency, near, threshold=options.learn_threshold,
        )
    timings["total"] = round(time.perf_counter() - started, 2)
    audit["timings_s"] = timings
    return audit
