"""bench/curation.py's simulation on a tiny case, in-process, so the benchmark cannot rot.

The stream loop runs against an in-process IO: a toy tagger that suggests the tags of the
artworks it has learned by the same artist, then a fixed guess; decisions come from the real
fold. The crowd and the lost-feedback check run as the benchmark runs them.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from arttag.catalogue.split import split_of
from arttag.curation.fold import apply, decisions_of
from arttag.curation.rules import CurationRules
from arttag.curation.state import CurationState
from arttag.events import ArtworkMetadata, TagFeedbackGiven

REPO = Path(__file__).resolve().parents[2]


def _load_bench():
    spec = importlib.util.spec_from_file_location("arttag_bench_curation", REPO / "bench" / "curation.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


bench = _load_bench()
RULES = CurationRules()
GUESS = ("landscape", "portrait", "sea")


def artwork(i: int, artist: str, tags: Sequence[str], novel: bool = False):
    meta = ArtworkMetadata(title=f"Work {i}", artists=[artist], accession_number=f"T{i:05d}")
    return bench.StreamArtwork(f"A{i}", meta, {t: t.title() for t in tags}, novel)


class InProcessIO:
    """Suggestions from a toy tagger that learns (or not) from the real fold's decisions."""

    def __init__(self, learns: bool) -> None:
        self.learns = learns
        self.state = CurationState()
        self.artworks: dict[str, Any] = {}
        self.known: dict[str, set[str]] = {}  # artist -> tags learned from accepted decisions
        self.feedback: list[TagFeedbackGiven] = []

    def send_artwork(self, art) -> None:
        self.artworks[art.artwork_id] = art

    def await_suggestion(self, artwork_id: str) -> dict[str, Any]:
        art = self.artworks[artwork_id]
        learned = sorted(self.known.get(art.metadata.artists[0], ()))
        tags = [*learned, *(g for g in GUESS if g not in learned)]
        return {"suggestion_id": f"{artwork_id}:1", "model_version": "toy",
                "suggestions": [{"tag_id": t, "label": t} for t in tags]}

    def send_feedback(self, events: Sequence[TagFeedbackGiven]) -> None:
        for event in events:
            apply(self.state, event, RULES)
        self.feedback += events

    def await_decisions(self, artwork_id: str, accepted: frozenset[str], rejected: frozenset[str]) -> None:
        record = decisions_of(self.state, artwork_id, RULES)
        assert {d.tag_id for d in record.accepted} == accepted
        assert {d.tag_id for d in record.rejected} == rejected
        self.decided = (artwork_id, accepted)

    def await_learned(self, artwork_id: str) -> None:
        decided, accepted = self.decided
        assert decided == artwork_id  # learning follows the artwork's decisions
        if self.learns:
            artist = self.artworks[artwork_id].metadata.artists[0]
            self.known.setdefault(artist, set()).update(accepted)


STREAM = [
    artwork(1, "Turner", ["sea", "ship"]),
    artwork(2, "Turner", ["sea", "ship"], novel=True),
    artwork(3, "Turner", ["ship", "storm"], novel=True),
    artwork(4, "Hepworth", ["abstraction"]),
]


def test_the_curator_accepts_right_rejects_wrong_in_the_top_5_and_adds_the_missing():
    art = artwork(9, "X", ["a", "b", "c"])
    ranked = ["a", "w1", "w2", "w3", "w4", "w5", "b"]  # b right but 7th, w5 wrong but 6th
    events = bench.curator_feedback(art, {"suggestion_id": "s", "model_version": "m",
                                          "suggestions": [{"tag_id": t, "label": t} for t in ranked]})
    actions = {e.tag_id: e.action for e in events}
    assert actions == {"a": "accepted", "b": "accepted", "w1": "rejected", "w2": "rejected",
                       "w3": "rejected", "w4": "rejected", "c": "added"}
    assert all(e.actor.kind == "curator" and e.suggestion_id == "s" for e in events)
    assert bench.expected_verdict(events) == (frozenset("abc"), frozenset({"w1", "w2", "w3", "w4"}))


def test_a_model_that_learns_each_decision_scores_better_on_the_next_artwork():
    online_io, static_io = InProcessIO(learns=True), InProcessIO(learns=False)
    online = bench.run_curated_stream(STREAM, online_io, progress_every=0)
    static = bench.run_backlog(STREAM, static_io)
    # the second Turner is suggested what the curator decided on the first
    assert online[1].ranking[:2] == ["sea", "ship"] and static[1].ranking[:2] == ["landscape", "portrait"]
    on, st = bench.stream_quality(STREAM, online), bench.stream_quality(STREAM, static)
    assert on["all"]["documents"] == 4 and on["novel_text"]["documents"] == 2
    assert bench.gain(on, st, "all", "f1_at_5") > 0
    assert bench.gain(on, st, "novel_text", "f1_at_5") > bench.gain(on, st, "all", "f1_at_5")
    # every decision the curator made is in the fold, and none is lost
    expected = {a: decisions_of(online_io.state, a, RULES) for a in online_io.state.artworks}
    published = {a: r.decisions_id for a, r in expected.items()}
    assert bench.lost_feedback(online_io.feedback, published, expected)["lost"] == 0
    stale = {**published, "A2": "something else"}
    lost = bench.lost_feedback(online_io.feedback, stale, expected)
    assert lost["lost"] == sum(e.artwork_id == "A2" for e in online_io.feedback) and lost["artworks_wrong"] == 1


def crowd_suggestions(n: int) -> list:
    """``n`` suggestions whose top 5 holds 3 true tags and 2 wrong ones."""
    return [bench.VotedSuggestion(f"A{i}", (f"t{i}a", f"w{i}a", f"t{i}b", f"w{i}b", f"t{i}c"),
                                  frozenset({f"t{i}a", f"t{i}b", f"t{i}c", f"t{i}d"})) for i in range(n)]


def test_the_crowd_simulation_is_deterministic_and_casts_the_adversarial_share():
    suggestions = crowd_suggestions(60)
    params = bench.CrowdParams(adversarial_share=0.2, honest_pool=20, curator_delay=5)
    a, b = bench.crowd_feedback(suggestions, params), bench.crowd_feedback(suggestions, params)
    assert [e.event_id for e in a.events] == [e.event_id for e in b.events]
    public = [e for e in a.events if e.actor.kind == "public"]
    adversarial = [e for e in public if e.actor.id.startswith("public-a")]
    assert 0.12 < len(adversarial) / len(public) < 0.28
    assert all(e.action == "accepted" for e in adversarial)
    assert a.reviewed and {e.artwork_id for e in a.events if e.actor.kind == "curator"} == a.reviewed
    # human pace: nobody votes implausibly fast, so only verdicts and accepting everything act
    times: dict[str, list] = {}
    for e in public:
        times.setdefault(e.actor.id, []).append(e.occurred_at)
    gaps = [(y - x).total_seconds() for ts in times.values() for x, y in zip(sorted(ts), sorted(ts)[1:])]
    assert min(gaps) >= RULES.min_seconds_between_votes


def test_adversaries_lower_precision_and_trust_holds_it_up():
    suggestions = crowd_suggestions(120)
    rows, _ = bench.crowd_table(suggestions, RULES, shares=(0.0, 0.3), honest_pool=30, curator_delay=5)
    clean, attacked = rows
    assert clean["precision"] > 0.9 and clean["recall_of_voted_true_tags"] > 0.6
    assert clean["recall_of_all_true_tags"] < clean["recall_of_voted_true_tags"]  # t*d is never voted on
    assert attacked["adversarial_votes"] > 0 and attacked["precision"] <= clean["precision"]
    # accepting everything costs weight: adversaries end lighter than honest contributors
    assert attacked["median_weight_adversarial"] < attacked["median_weight_honest"]


def test_the_training_file_and_the_stream_split_on_the_acquisition_year(tmp_path: Path):
    rows = [
        {"id": 1, "acno": "N00001", "title": "Old sea", "artists": ["Turner"], "acquisition_year": 1856,
         "tags": [{"id": 10, "name": "sea", "parent": "nature"}]},
        {"id": 2, "acno": "T09000", "title": "New sea", "artists": ["Turner"], "acquisition_year": 2004,
         "tags": [{"id": 10, "name": "sea", "parent": "nature"}]},
        {"id": 3, "acno": "AR00001", "title": "Old sea", "artists": ["Turner"], "acquisition_year": 2008,
         "tags": [{"id": 11, "name": "ship", "parent": "transport"}]},
        {"id": 4, "acno": "P00001", "title": "Untagged", "acquisition_year": 2010, "tags": []},
        {"id": 5, "acno": "N00002", "title": "Unknown year", "tags": []},
    ]
    tate = tmp_path / "tate.jsonl.gz"
    with gzip.open(tate, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    assert bench.write_training_file(tate, tmp_path / "train.jsonl.gz", 2000) == 1
    stream, counts = bench.load_stream(tate, 2000, None)
    assert [a.artwork_id for a in stream] == ["3", "2"]  # accession order, tagged only
    assert counts == {"training_rows": 1, "acquired_later": 3, "acquired_later_tagged": 2, "no_acquisition_year": 1}
    assert all(not a.metadata.tags for a in stream)  # published without their tags
    assert stream[1].truth == {"10": "sea"}
    # "Old sea" by Turner is the text of artwork 1, which the bundle is fitted on unless the
    # split rule holds it out for evaluation; "New sea" is nowhere in training
    assert stream[0].novel_text is (split_of("1") == "dev")
    assert stream[1].novel_text is True


def test_the_headline_has_exactly_the_keys_the_issue_names():
    assert bench.HEADLINE_KEYS == (
        "static_f1_at_5", "online_f1_at_5", "online_gain_f1_at_5", "novel_text_online_gain_f1_at_5",
        "consensus_precision_at_20pct_adversarial", "consensus_recall_at_20pct_adversarial",
        "feedback_events_per_s", "lost_feedback",
    )
    results = REPO / "bench" / "results" / "curation.json"
    if results.exists():
        assert tuple(json.loads(results.read_text())["headline"]) == bench.HEADLINE_KEYS
