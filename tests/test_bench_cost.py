"""bench/cost.py's comparison of two versions' suggestions: what counts as the same explanation."""

from __future__ import annotations

import copy

from .support import REPO, load_bench_module

cost = load_bench_module("cost")

SUGGESTION = {
    "tag_id": "7", "label": "harbour", "score": 0.81, "confidence": 0.81, "scorers": ["knn", "tfidf"],
    "already_assigned": False,
    "explanation": {"summary": "'harbour' (81% confidence); knn: 2 similar tagged artwork(s) carry it",
                    "contributions": [
                        {"scorer": "knn", "score": 0.5, "rank": 1, "evidence": [
                            {"kind": "neighbour", "artwork_id": "a1", "title": "Quay", "similarity": 0.91}]},
                        {"scorer": "tfidf", "score": 0.4, "rank": 2, "evidence": [
                            {"kind": "term", "field": "title", "term": "harbour", "weight": 0.2}]}]},
}


def test_identical_suggestions_compare_as_identical():
    result = cost.compare([[SUGGESTION]], [[copy.deepcopy(SUGGESTION)]])
    assert result["identical_suggestion_lists"] == 1.0 and result["same_citations"] == 1.0
    assert result["largest_figure_difference"] == 0.0


def test_a_changed_figure_is_measured_and_a_changed_citation_is_counted():
    moved = copy.deepcopy(SUGGESTION)
    moved["explanation"]["contributions"][0]["evidence"][0]["similarity"] = 0.9101
    moved["explanation"]["summary"] = moved["explanation"]["summary"].replace("81%", "82%")
    result = cost.compare([[SUGGESTION]], [[moved]])
    assert result["identical_suggestion_lists"] == 0.0 and result["same_citations"] == 1.0
    assert abs(result["largest_figure_difference"] - 0.0001) < 1e-9

    other = copy.deepcopy(SUGGESTION)
    other["explanation"]["contributions"][1]["evidence"][0]["term"] = "quay"
    result = cost.compare([[SUGGESTION]], [[other]])
    assert result["same_citations"] == 0.0 and result["same_tags_same_order"] == 1.0
    assert result["largest_figure_difference"] == float("inf")


def test_recorded_paths_never_name_this_machines_layout():
    assert cost.shown_path("/somewhere/else/bundles/fast/current") == ".../bundles/fast/current"
    assert not cost.shown_path(REPO / "bench" / "cost.py").startswith("/")
