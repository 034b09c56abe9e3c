"""Learnability: per tag, the model's precision and recall on the dev split, and a likely reason when it is low.

A tag is *predicted* for a dev artwork when it is among the tagger's
suggestions with confidence >= the threshold; it is *true* when a human
assigned it. The diagnosis names the likely cause so curators know what to
fix: ``too rare`` (few training examples), ``inconsistent`` (near-identical
artworks disagree about it, or it has a near-duplicate tag), ``learnable``
(F1 >= 0.5), otherwise ``hard`` (enough consistent examples, still missed:
the metadata text may not say what the tag is about).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from arttag.catalogue.records import CatalogueRecord
from arttag.events import TagSuggestion


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def learnability(
    dev_records: Sequence[CatalogueRecord],
    suggestions: Sequence[Sequence[TagSuggestion]],
    train_usage: Mapping[str, int],
    labels: Mapping[str, str],
    inconsistency: Mapping[str, float] | None = None,
    near_duplicates: set[str] | None = None,
    threshold: float = 0.5,
    rare_below: int = 10,
    inconsistent_from: float = 0.5,
) -> dict[str, Any]:
    inconsistency = inconsistency or {}
    near_duplicates = near_duplicates or set()
    tp: Counter[str] = Counter()
    predicted: Counter[str] = Counter()
    support: Counter[str] = Counter()
    evaluated = 0
    for record, ranked in zip(dev_records, suggestions):
        truth = {t.id for t in record.metadata.tags}
        if not truth:
            continue
        evaluated += 1
        guess = {s.tag_id for s in ranked if s.confidence >= threshold}
        support.update(truth)
        predicted.update(guess)
        tp.update(truth & guess)

    rows = []
    for tag in sorted(set(support) | set(predicted)):
        precision = _ratio(tp[tag], predicted[tag])
        recall = _ratio(tp[tag], support[tag])
        f1 = (
            round(2 * precision * recall / (precision + recall), 4)
            if precision and recall else (0.0 if support[tag] else None)
        )
        reasons = []
        if train_usage.get(tag, 0) < rare_below:
            reasons.append("too rare")
        if inconsistency.get(tag, 0.0) >= inconsistent_from or tag in near_duplicates:
            reasons.append("inconsistent")
        if f1 is not None and f1 >= 0.5:
            diagnosis = "learnable"
        elif reasons:
            diagnosis = " and ".join(reasons)
        else:
            diagnosis = "hard"
        rows.append({
            "tag_id": tag,
            "label": labels.get(tag, tag),
            "train_usage": train_usage.get(tag, 0),
            "dev_support": support[tag],
            "predicted": predicted[tag],
            "true_positives": tp[tag],
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "inconsistency": inconsistency.get(tag),
            "has_near_duplicate": tag in near_duplicates,
            "diagnosis": diagnosis,
        })
    rows.sort(key=lambda r: (-r["dev_support"], r["label"]))
    total_tp, total_pred, total_true = sum(tp.values()), sum(predicted.values()), sum(support.values())
    micro_p, micro_r = _ratio(total_tp, total_pred), _ratio(total_tp, total_true)
    diagnoses = Counter(r["diagnosis"] for r in rows if r["dev_support"])
    return {
        "skipped": False,
        "threshold": threshold,
        "rare_below": rare_below,
        "dev_artworks_evaluated": evaluated,
        "micro": {
            "precision": micro_p,
            "recall": micro_r,
            "f1": round(2 * micro_p * micro_r / (micro_p + micro_r), 4) if micro_p and micro_r else 0.0,
        },
        "diagnoses": dict(sorted(diagnoses.items())),
        "tags": rows,
    }
