"""The data-quality monitor's metrics move as artworks, suggestions and feedback arrive."""

from __future__ import annotations

import pytest
from arttag.errors import ModelError
from arttag.events import (
    ArtworkMetadata,
    Explanation,
    FeedbackActor,
    TagFeedbackGiven,
    TagSuggestion,
)
from arttag.quality.monitoring import (
    DataQualityMonitor,
    build_reference_profile,
    load_reference_profile,
    population_stability_index,
    save_reference_profile,
)
from prometheus_client import CollectorRegistry, generate_latest


def _artwork(i: int, medium: str | None = "Oil paint on canvas", description: str | None = None) -> ArtworkMetadata:
    return ArtworkMetadata(title=f"Landscape with a River, number {i}", artists=["A. Painter"], year=1850,
                           medium=medium, description=description)


def _suggestion(confidence: float) -> TagSuggestion:
    return TagSuggestion(tag_id="1", label="river", score=confidence, confidence=confidence, scorers=["knn"],
                         already_assigned=False, explanation=Explanation(summary="", contributions=[]))


def _feedback(action: str) -> TagFeedbackGiven:
    return TagFeedbackGiven(artwork_id="1", tag_id="1", action=action, actor=FeedbackActor(kind="curator", id="c1"))


@pytest.fixture
def profile():
    return build_reference_profile([_artwork(i) for i in range(200)], source="test")


def _value(registry, name, **labels):
    return registry.get_sample_value(name, labels or None)


def test_reference_profile_round_trip(profile, tmp_path):
    assert profile.artworks == 200
    assert profile.field_absent["medium"] == 0.0 and profile.field_absent["description"] == 1.0
    assert len(profile.text_length_shares) == len(profile.text_length_edges) + 1
    assert abs(sum(profile.text_length_shares) - 1.0) < 1e-9
    path = save_reference_profile(profile, tmp_path)  # a bundle folder
    assert path.name == "reference_profile.json"
    assert load_reference_profile(tmp_path) == profile
    with pytest.raises(ModelError):
        load_reference_profile(tmp_path / "missing.json")


def test_field_drift_moves_with_missing_fields(profile):
    registry = CollectorRegistry()
    monitor = DataQualityMonitor(registry, profile, window=10)
    assert _value(registry, "arttag_dq_field_absent_reference_ratio", field="description") == 1.0
    monitor.observe_artworks([_artwork(i) for i in range(10)])
    assert _value(registry, "arttag_dq_artworks_total") == 10
    assert _value(registry, "arttag_dq_field_absent_drift", field="medium") == 0.0
    # Half of the next window arrives without a medium.
    monitor.observe_artworks([_artwork(i, medium=None if i % 2 else "Oil") for i in range(10)])
    assert _value(registry, "arttag_dq_field_absent_total", field="medium") == 5
    assert _value(registry, "arttag_dq_field_absent_ratio", field="medium") == 0.5
    assert _value(registry, "arttag_dq_field_absent_drift", field="medium") == 0.5
    assert _value(registry, "arttag_dq_window_artworks") == 10
    # A description where training had none is drift too, downwards.
    monitor.observe_artworks([_artwork(i, description="A long description") for i in range(10)])
    assert _value(registry, "arttag_dq_field_absent_drift", field="description") == -1.0


def test_text_length_drift(profile):
    registry = CollectorRegistry()
    monitor = DataQualityMonitor(registry, profile, window=50)
    monitor.observe_artworks([_artwork(i) for i in range(0, 200, 4)])  # like the reference
    stable = _value(registry, "arttag_dq_text_length_psi")
    assert stable < 0.1
    monitor.observe_artworks([_artwork(i, description="word " * 200) for i in range(50)])
    assert _value(registry, "arttag_dq_text_length_psi") > 1.0
    assert _value(registry, "arttag_dq_text_length_chars_count") == 100
    assert _value(registry, "arttag_dq_text_length_chars_bucket", le="100.0") == 50


def test_top_confidence_and_empty_suggestions():
    registry = CollectorRegistry()
    monitor = DataQualityMonitor(registry, None)
    monitor.observe_suggestions([[_suggestion(0.9), _suggestion(0.2)], [_suggestion(0.3)], []])
    assert _value(registry, "arttag_dq_top_confidence_count") == 2
    assert _value(registry, "arttag_dq_top_confidence_bucket", le="0.5") == 1
    assert _value(registry, "arttag_dq_top_confidence_mean") == pytest.approx(0.6)
    assert _value(registry, "arttag_dq_suggestions_empty_total") == 1
    monitor.observe_suggestions([])  # a no-op
    assert _value(registry, "arttag_dq_top_confidence_count") == 2


def test_acceptance_ratio_from_feedback():
    registry = CollectorRegistry()
    monitor = DataQualityMonitor(registry, None, window=4)
    for action in ("accepted", "accepted", "rejected", "added"):
        monitor.observe_feedback(_feedback(action))
    assert _value(registry, "arttag_dq_feedback_total", action="accepted") == 2
    assert _value(registry, "arttag_dq_feedback_total", action="added") == 1
    assert _value(registry, "arttag_dq_acceptance_ratio") == pytest.approx(2 / 3)
    for _ in range(4):
        monitor.observe_feedback(_feedback("rejected"))
    assert _value(registry, "arttag_dq_acceptance_ratio") == 0.0  # the window forgot the acceptances


def test_without_a_profile_no_drift_is_exported():
    registry = CollectorRegistry()
    DataQualityMonitor(registry, None).observe_artworks([_artwork(1)])
    text = generate_latest(registry).decode()
    assert "arttag_dq_field_absent_ratio" in text
    assert 'arttag_dq_field_absent_drift{' not in text


def test_psi():
    assert population_stability_index([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert population_stability_index([0.5, 0.5], [0.9, 0.1]) > 0.25


def test_alert_rules_use_exported_metrics():
    import re
    from pathlib import Path

    import yaml

    rules = yaml.safe_load((Path(__file__).parents[1] / "deploy" / "prometheus" / "alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    used = {name for e in exprs for name in re.findall(r"arttag_dq_\w+", e)}
    registry = CollectorRegistry()
    profile = build_reference_profile([_artwork(i) for i in range(20)], suggestions=[[_suggestion(0.8)]])
    monitor = DataQualityMonitor(registry, profile)
    monitor.observe_artworks([_artwork(1)])
    monitor.observe_suggestions([[_suggestion(0.5)]])
    monitor.observe_feedback(_feedback("accepted"))
    exported = {m.name for m in registry.collect()} | {
        s.name for m in registry.collect() for s in m.samples
    }
    assert used and used <= exported, used - exported
