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


def _fake_with_thresholds(thresholds: dict, version: str = "fake-1"):
    from arttag.catalogue.vocabulary import Tag
    from arttag.model.fake_tagger import FakeTagger, TitleRule

    tagger = FakeTagger([TitleRule("Boat", Tag("1", "boat"), 0.97), TitleRule("sea", Tag("2", "sea"), 0.6)],
                        model_version=version)
    tagger.manifest = {"model_version": version, "training": {"auto_apply": {"thresholds": thresholds}}}
    return tagger


def test_the_stream_marks_suggestions_only_when_the_setting_asks():
    from arttag.events import ArtworkCreated, ArtworkMetadata, encode_event
    from arttag_stream.processing import BatchProcessor, RawMessage, StateStore

    raw = encode_event(ArtworkCreated(artwork_id="T1", revision=1, artwork=ArtworkMetadata(title="Boat at sea")))
    message = [RawMessage("artworks.created.v1", 0, 0, b"T1", raw)]
    tagger = _fake_with_thresholds({"0.95": 0.9, "0.9": 0.5})
    [(_, off)] = BatchProcessor(tagger, StateStore(), consumer="c").process(message).suggestions
    assert [s.auto_apply for s in off.suggestions] == [False, False]
    [(_, on)] = BatchProcessor(tagger, StateStore(), consumer="c",
                               auto_apply_precision=0.95).process(message).suggestions
    assert [(s.tag_id, s.auto_apply) for s in on.suggestions] == [("1", True), ("2", False)]
    processor = BatchProcessor(tagger, StateStore(), consumer="c", auto_apply_precision=0.9)
    [(_, lower)] = processor.process(message).suggestions
    assert [s.auto_apply for s in lower.suggestions] == [True, True]
    # a hot-swapped bundle without thresholds serves unmarked instead of stopping the worker
    processor.use(_fake_with_thresholds({}, version="fake-2"))
    [(_, swapped)] = processor.process(message).suggestions
    assert swapped.model_version == "fake-2" and not any(s.auto_apply for s in swapped.suggestions)


def test_the_stream_refuses_to_start_marking_with_a_bundle_that_cannot():
    from arttag.model.fake_tagger import FakeTagger
    from arttag_stream.processing import BatchProcessor, StateStore

    with pytest.raises(ConfigurationError, match="no bundle manifest"):
        BatchProcessor(FakeTagger(), StateStore(), consumer="c", auto_apply_precision=0.95)
    with pytest.raises(ConfigurationError, match="no threshold"):
        BatchProcessor(_fake_with_thresholds({"0.9": 0.5}), StateStore(), consumer="c", auto_apply_precision=0.95)


def test_training_stores_thresholds_chosen_out_of_fold(hashing_bundle_dir):
    from arttag.model.bundle import read_manifest

    auto = read_manifest(hashing_bundle_dir)["training"]["auto_apply"]
    assert set(auto["thresholds"]) == {"0.95", "0.9"}
    assert "out-of-fold" in auto["chosen_on"]
    for key, threshold in auto["thresholds"].items():
        reached = auto["on_rerank"][key]
        if threshold is not None:  # the sample is small: a target may be out of reach
            assert reached["precision"] >= float(key) and reached["suggestions"] >= 20
    t95, t90 = auto["thresholds"]["0.95"], auto["thresholds"]["0.9"]
    if t95 is not None and t90 is not None:
        assert t90 <= t95
