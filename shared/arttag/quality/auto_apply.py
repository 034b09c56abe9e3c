"""Tags safe to apply unreviewed: the confidence above which suggestions reach a target precision.

At training, :func:`choose_threshold` picks, on out-of-fold re-ranker probabilities of the
re-ranker's own split, the lowest confidence ``t`` such that the suggestions with confidence
``>= t`` are right at least ``precision`` of the time (0.95 and 0.9 by default); the thresholds
go into the bundle manifest (``training.auto_apply``). When the ``auto_apply_precision`` setting
names one of them, :func:`mark_auto_apply` sets ``auto_apply: true`` on the suggestions at or
above it. :func:`share_above` is what evaluation reports on dev: the share of true tags recovered
above a threshold and the precision reached there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from arttag.errors import ConfigurationError
from arttag.events import TagSuggestion

DEFAULT_PRECISIONS = (0.95, 0.9)
MIN_SUGGESTIONS = 20
"""A threshold must keep at least this many suggestions: precision over fewer is noise."""


def precision_key(precision: float) -> str:
    """How a target precision names its threshold in the manifest: ``"0.95"``."""
    return f"{precision:g}"


def choose_threshold(confidences: Iterable[float], correct: Iterable[bool], precision: float,
                     min_suggestions: int = MIN_SUGGESTIONS) -> float | None:
    """The lowest confidence whose suggestions at or above it reach ``precision``; None when no
    set of at least ``min_suggestions`` top suggestions does.

    Only confidences where the value changes are candidates, so suggestions tied on a
    confidence are all in or all out, as they will be when the threshold is applied.

    >>> choose_threshold([0.9, 0.8, 0.7, 0.6], [True, True, False, False], 0.9, min_suggestions=1)
    0.8
    """
    p = np.asarray(list(confidences), dtype=np.float64)
    y = np.asarray(list(correct), dtype=np.float64)
    if len(p) == 0:
        return None
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    kept = np.arange(1, len(ps) + 1)
    reached = np.cumsum(ys) / kept
    boundary = np.r_[ps[:-1] > ps[1:], True]
    ok = boundary & (reached >= precision) & (kept >= min_suggestions)
    if not ok.any():
        return None
    return float(ps[np.flatnonzero(ok).max()])


def share_above(confidences: Sequence[float], correct: Sequence[bool], gold_total: int,
                threshold: float | None) -> dict[str, Any]:
    """Suggestions at or above ``threshold``: how many, the precision reached, and the share of all
    ``gold_total`` true tags they recover (``recall``). A None threshold applies nothing."""
    if threshold is None:
        return {"threshold": None, "suggestions": 0, "precision": None, "recall": 0.0}
    p = np.asarray(confidences, dtype=np.float64)
    y = np.asarray(correct, dtype=bool)
    above = p >= threshold
    n, hits = int(above.sum()), int((above & y).sum())
    return {"threshold": threshold, "suggestions": n, "precision": hits / n if n else None,
            "recall": hits / gold_total if gold_total else 0.0}


def threshold_for(manifest: Mapping[str, Any], precision: float) -> float | None:
    """The bundle's threshold for ``precision``; None when the bundle found no confidence that reaches it.

    Raises :class:`ConfigurationError` when the bundle was trained without that target (or before
    thresholds were stored): applying tags unreviewed on a guess is worse than not at all.
    """
    stored = ((manifest.get("training") or {}).get("auto_apply") or {}).get("thresholds") or {}
    key = precision_key(precision)
    if key not in stored:
        raise ConfigurationError(
            f"auto_apply_precision={key}: bundle {manifest.get('model_version')} has no threshold for it "
            f"(it has {sorted(stored) or 'none'}); retrain with that precision in auto_apply_precisions, "
            "or unset ARTTAG_AUTO_APPLY_PRECISION")
    value = stored[key]
    return None if value is None else float(value)


def mark_auto_apply(suggestions: Sequence[TagSuggestion], threshold: float | None) -> list[TagSuggestion]:
    """``suggestions`` with ``auto_apply=True`` on those whose confidence is at or above ``threshold``
    (never on a tag the artwork already has: there is nothing to apply)."""
    if threshold is None:
        return list(suggestions)
    return [s.model_copy(update={"auto_apply": True})
            if s.confidence >= threshold and not s.already_assigned else s for s in suggestions]
