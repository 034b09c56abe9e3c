"""Tags safe to apply unreviewed: thresholds chosen for a target precision, and marking suggestions."""

from __future__ import annotations

import pytest
from arttag.errors import ConfigurationError
from arttag.events import Explanation, TagSuggestion
from arttag.quality.auto_apply import choose_threshold, mark_auto_apply, share_above, threshold_for


def test_threshold_is_the_lowest_confidence_reaching_the_precision():
    conf = [0.99, 0.97, 0.95, 0.9, 0.85, 0.8, 0.5]
    right = [True, True, True, False, True, True, False]
    # top 3: 1.0; top 5: 4/5 = 0.8; top 6: 5/6 = 0.83
    assert choose_threshold(conf, right, 0.95, min_suggestions=1) == 0.95
    assert choose_threshold(conf, right, 0.8, min_suggestions=1) == 0.8
    assert choose_threshold(conf, right, 0.95, min_suggestions=4) is None
    assert choose_threshold([], [], 0.9) is None


def test_tied_confidences_are_all_in_or_all_out():
    # at 0.9 two suggestions tie, one right, one wrong: 3/4 = 0.75 < 0.9, so the threshold stays above them
    assert choose_threshold([0.95, 0.92, 0.9, 0.9], [True, True, True, False], 0.9, min_suggestions=1) == 0.92


def test_share_above_counts_recall_over_every_true_tag():
    got = share_above([0.99, 0.9, 0.6], [True, False, True], gold_total=5, threshold=0.9)
    assert got == {"threshold": 0.9, "suggestions": 2, "precision": 0.5, "recall": 0.2}
    assert share_above([0.99], [True], 5, None)["recall"] == 0.0


def _suggestion(tag: str, confidence: float, assigned: bool = False) -> TagSuggestion:
    return TagSuggestion(tag_id=tag, label=tag, score=confidence, confidence=confidence, scorers=["knn"],
                         already_assigned=assigned, explanation=Explanation(summary="s", contributions=[]))


def test_marking_only_new_tags_at_or_above_the_threshold():
    marked = mark_auto_apply([_suggestion("a", 0.97), _suggestion("b", 0.96, assigned=True),
                              _suggestion("c", 0.959)], 0.96)
    assert [s.auto_apply for s in marked] == [True, False, False]
    assert [s.auto_apply for s in mark_auto_apply(marked[2:], None)] == [False]


def test_threshold_from_the_manifest_or_a_clear_error():
    manifest = {"model_version": "m1", "training": {"auto_apply": {"thresholds": {"0.95": 0.93, "0.9": None}}}}
    assert threshold_for(manifest, 0.95) == 0.93
    assert threshold_for(manifest, 0.9) is None
    with pytest.raises(ConfigurationError, match="no threshold for it"):
        threshold_for(manifest, 0.8)
    with pytest.raises(ConfigurationError):
        threshold_for({"model_version": "old", "training": {}}, 0.95)
