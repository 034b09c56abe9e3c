"""Ranking and calibration metrics, Annif-style: computed per artwork, then averaged.

For an artwork with gold tags ``G`` and a ranking ``r``:

* ``P@k = |r[:k] & G| / k``; ``R@k = |r[:k] & G| / |G|``;
* ``F1@5`` = the harmonic mean of P@5 and R@5 of that artwork (0 when both are 0);
* ``nDCG@10`` with binary gains, ideal DCG over ``min(|G|, 10)`` gold tags;
* ``recall@10`` over a tag subset (rare, never seen in training) pools every
  (artwork, gold tag) pair whose tag is in the subset;
* ``ECE``: suggestions binned by confidence into 10 equal-width bins;
  sum over bins of ``|bin| / n * |mean confidence - fraction correct|``.

Only artworks with at least one gold tag are evaluated.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def ranking_metrics(rankings: Sequence[Sequence[int]], gold: Sequence[set[int]]) -> dict[str, float]:
    """Averaged P@1, P@3, P@5, R@5, F1@5, nDCG@10 over artworks with gold tags."""
    sums = dict.fromkeys(("p_at_1", "p_at_3", "p_at_5", "r_at_5", "f1_at_5", "ndcg_at_10"), 0.0)
    n = 0
    discounts = 1.0 / np.log2(np.arange(2, 12))
    for ranked, g in zip(rankings, gold):
        if not g:
            continue
        n += 1
        hits = [1.0 if t in g else 0.0 for t in list(ranked)[:10]]
        hits += [0.0] * (10 - len(hits))
        h = np.array(hits)
        p5 = h[:5].sum() / 5
        r5 = h[:5].sum() / len(g)
        sums["p_at_1"] += h[0]
        sums["p_at_3"] += h[:3].sum() / 3
        sums["p_at_5"] += p5
        sums["r_at_5"] += r5
        sums["f1_at_5"] += 0.0 if p5 + r5 == 0 else 2 * p5 * r5 / (p5 + r5)
        ideal = discounts[: min(len(g), 10)].sum()
        sums["ndcg_at_10"] += float((h * discounts).sum() / ideal)
    out = {k: (v / n if n else 0.0) for k, v in sums.items()}
    out["documents"] = n
    return out


def subset_recall(rankings: Sequence[Sequence[int]], gold: Sequence[set[int]], subset: set[int], k: int = 10) -> dict[str, float]:
    """Recall@k pooled over (artwork, gold tag) pairs whose tag is in ``subset``."""
    pairs = found = 0
    for ranked, g in zip(rankings, gold):
        wanted = g & subset
        if not wanted:
            continue
        top = set(list(ranked)[:k])
        pairs += len(wanted)
        found += len(wanted & top)
    return {"recall": found / pairs if pairs else 0.0, "pairs": pairs}


def expected_calibration_error(confidences: Iterable[float], correct: Iterable[bool], bins: int = 10) -> float:
    c = np.asarray(list(confidences), dtype=np.float64)
    y = np.asarray(list(correct), dtype=np.float64)
    if len(c) == 0:
        return 0.0
    which = np.minimum((c * bins).astype(int), bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.mean() * abs(c[mask].mean() - y[mask].mean())
    return float(ece)
