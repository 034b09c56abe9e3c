"""Plots of an evaluation (``arttag evaluate --plots DIR``): precision-recall, calibration, recall per group.

Drawn from what :func:`arttag.model.training.evaluate_ensemble` collects (``collect=``): per
artwork the ensemble's top 10, their confidences, whether each is right, and the gold tags.
matplotlib runs on its Agg backend (no display needed) and is imported only here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from arttag.catalogue.vocabulary import Vocabulary


def precision_recall(confidences: Sequence[Sequence[float]], correct: Sequence[Sequence[bool]],
                     gold_total: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, precision, recall) of keeping the top-10 suggestions with confidence ≥ threshold."""
    conf = np.array([c for cs in confidences for c in cs], dtype=float)
    hit = np.array([bool(y) for ys in correct for y in ys], dtype=float)
    order = np.argsort(-conf, kind="stable")
    conf, hit = conf[order], hit[order]
    tp = np.cumsum(hit)
    kept = np.arange(1, len(conf) + 1)
    return conf, tp / np.maximum(kept, 1), tp / max(gold_total, 1)


def calibration(confidences: Sequence[Sequence[float]], correct: Sequence[Sequence[bool]],
                bins: int = 10) -> list[dict[str, float]]:
    """Per confidence bin: mean confidence, share right, count (empty bins left out)."""
    conf = np.array([c for cs in confidences for c in cs], dtype=float)
    hit = np.array([bool(y) for ys in correct for y in ys], dtype=float)
    which = np.minimum((conf * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            out.append({"confidence": float(conf[mask].mean()), "accuracy": float(hit[mask].mean()),
                        "count": int(mask.sum())})
    return out


def recall_by_group(rankings: Sequence[Sequence[int]], gold: Sequence[set[int]], vocabulary: Vocabulary,
                    k: int = 10) -> dict[str, dict[str, float]]:
    """Recall@k of the gold tags of each level-1 group: {group: {recall, gold}}."""
    found: dict[str, int] = {}
    total: dict[str, int] = {}
    for top, g in zip(rankings, gold):
        top_k = set(top[:k])
        for t in g:
            # Negative ids: gold tags the vocabulary lacks (never suggestable, always missed).
            group = (vocabulary.tags[t].group or "(no group)") if t >= 0 else "(not in the vocabulary)"
            total[group] = total.get(group, 0) + 1
            found[group] = found.get(group, 0) + (t in top_k)
    return {grp: {"recall": found[grp] / total[grp], "gold": total[grp]} for grp in total}


def write_plots(collected: dict[str, Any], vocabulary: Vocabulary, out_dir: Path, title: str = "",
                max_groups: int = 30) -> list[Path]:
    """Write precision_recall.png, calibration.png and recall_by_group.png into ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    conf, correct, gold = collected["confidences"], collected["correct"], collected["gold"]
    written = []

    thresholds, precision, recall = precision_recall(conf, correct, sum(len(g) for g in gold))
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.plot(recall, precision)
    for t in (0.2, 0.5, 0.8):
        i = np.searchsorted(-thresholds, -t, side="right") - 1
        if 0 <= i < len(thresholds):
            ax.annotate(f"≥ {t:.1f}", (recall[i], precision[i]), textcoords="offset points", xytext=(5, 5))
            ax.plot([recall[i]], [precision[i]], "o")
    ax.set(xlabel="recall (of all gold tags)", ylabel="precision",
           title=f"Precision-recall of the top 10 by confidence threshold{title}", xlim=(0, 1), ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    written.append(_save(fig, out_dir / "precision_recall.png", plt))

    bins = calibration(conf, correct)
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", label="ensemble")
    for b in bins:
        ax.annotate(str(b["count"]), (b["confidence"], b["accuracy"]), textcoords="offset points",
                    xytext=(4, -10), fontsize=7)
    ax.set(xlabel="confidence", ylabel="share of suggestions that are right",
           title=f"Calibration (top 10, 10 bins; n per bin){title}", xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    written.append(_save(fig, out_dir / "calibration.png", plt))

    groups = sorted(recall_by_group(collected["rankings"], gold, vocabulary).items(),
                    key=lambda kv: -kv[1]["gold"])[:max_groups]
    fig, ax = plt.subplots(figsize=(8, max(3, 0.28 * len(groups) + 1)))
    names = [f"{g} ({v['gold']})" for g, v in groups][::-1]
    ax.barh(names, [v["recall"] for _, v in groups][::-1])
    ax.set(xlabel="recall@10", xlim=(0, 1),
           title=f"Recall@10 per tag group (the {len(groups)} with most gold tags; n){title}")
    ax.tick_params(axis="y", labelsize=7)
    written.append(_save(fig, out_dir / "recall_by_group.png", plt))
    return written


def _save(fig: Any, path: Path, plt: Any) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
