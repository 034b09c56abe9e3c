"""The fold with the public: consensus, curators overruling it, and weights that change outcomes
on other artworks."""

from __future__ import annotations

from arttag.curation.fold import apply, decisions_of
from arttag.curation.rules import CurationRules
from arttag.curation.state import CurationState

from .helpers import curator, feedback

RULES = CurationRules()  # k = 3, margin 2.0


def fold(events, state=None):
    state = state or CurationState()
    changed: set[str] = set()
    for event in events:
        state, now = apply(state, event, RULES)
        changed |= now
    return state, changed


def decided(state, artwork="A1"):
    record = decisions_of(state, artwork, RULES)
    return ({d.tag_id: d.decided_by for d in record.accepted},
            {d.tag_id: d.decided_by for d in record.rejected}, record.proposed)


def test_three_agreeing_contributors_accept_with_the_newest_vote_as_provenance():
    votes = [feedback("A1", "t", "accepted", f"p{i}", 100 * i, suggestion_id=f"s{i}") for i in (1, 2, 3)]
    state, _ = fold(votes[:2])
    assert decided(state) == ({}, {}, ["t"])  # two are not enough
    state, changed = fold(votes[2:], state)
    assert changed == {"A1"}
    [decision] = decisions_of(state, "A1", RULES).accepted
    assert decision.decided_by == "consensus" and decision.contributors == ["p1", "p2", "p3"]
    assert (decision.event_id, decision.suggestion_id) == (votes[2].event_id, "s3")
    assert (decision.votes_for, decision.votes_against) == (3, 0)


def test_the_crowd_rejects_by_the_same_rule():
    state, _ = fold([feedback("A1", "t", "rejected", f"p{i}", 100 * i) for i in range(4)])
    assert decided(state) == ({}, {"t": "consensus"}, [])


def test_a_margin_too_small_leaves_the_tag_proposed():
    votes = [feedback("A1", "t", "accepted", f"a{i}", 100 * i) for i in range(4)]
    votes += [feedback("A1", "t", "rejected", f"r{i}", 1000 + 100 * i) for i in range(3)]
    state, _ = fold(votes)
    assert decided(state) == ({}, {}, ["t"])  # 4 against 3: margin 1 < 2


def test_a_contributor_changing_their_mind_counts_once():
    votes = [feedback("A1", "t", "accepted", "p1", 10), feedback("A1", "t", "rejected", "p1", 20),
             feedback("A1", "t", "rejected", "p2", 30), feedback("A1", "t", "rejected", "p3", 40)]
    state, _ = fold(votes)
    [decision] = decisions_of(state, "A1", RULES).rejected
    assert decision.contributors == ["p1", "p2", "p3"] and decision.votes_against == 0


def test_a_curator_overrules_the_crowd_and_the_crowd_cannot_overrule_back():
    crowd = [feedback("A1", "t", "accepted", f"p{i}", 100 * i) for i in range(5)]
    state, _ = fold([*crowd, curator("A1", "t", "rejected", 1000)])
    [decision] = decisions_of(state, "A1", RULES).rejected
    assert (decision.decided_by, decision.curator_id, decision.votes_against) == ("curator", "cur-1", 5)
    state, _ = fold([feedback("A1", "t", "accepted", f"q{i}", 2000 + 100 * i) for i in range(5)], state)
    assert decided(state) == ({}, {"t": "curator"}, [])


def _history_of(contributor: str, verdict: str, n: int = 4):
    """``contributor`` rejects tags on other artworks, then a curator gives ``verdict`` on each."""
    events = []
    for i in range(n):
        events.append(feedback(f"B{i}", "t", "rejected", contributor, 10_000 + 600 * i))
        events.append(curator(f"B{i}", "t", verdict, 20_000 + 600 * i))
    return events


def _contested():
    """Three accept and r1 rejects: a margin of exactly 2 while every weight is 1."""
    return [*(feedback("A1", "t", "accepted", f"a{i}", 100 * i) for i in range(3)),
            feedback("A1", "t", "rejected", "r1", 400)]


def test_a_contributor_curators_confirmed_carries_more_weight():
    assert decided(fold(_contested())[0]) == ({"t": "consensus"}, {}, [])
    state, _ = fold([*_history_of("r1", "rejected"), *_contested()])
    assert state.weights["r1"] > 1.5
    assert decided(state) == ({}, {}, ["t"])  # 3 - 1.67 < 2


def test_a_later_verdict_elsewhere_re_decides_the_artworks_a_contributor_voted_on():
    state, _ = fold([*_contested(), *_history_of("r1", "rejected")[:-1]])
    assert decided(state) == ({}, {}, ["t"])  # r1 already trusted: no consensus
    contradicted = [curator(f"B{i}", "t", "accepted", 50_000 + i) for i in range(3)]
    state, changed = fold(contradicted, state)
    assert state.weights["r1"] < 1.0
    assert "A1" in changed and decided(state) == ({"t": "consensus"}, {}, [])


def test_an_implausibly_fast_voter_loses_weight():
    burst = [feedback(f"C{i}", "t", "accepted", "a2", 5000 + 0.5 * i) for i in range(10)]
    state, _ = fold([*burst, *_contested()])
    assert state.weights["a2"] < 0.2
    assert decided(state) == ({}, {}, ["t"])


def test_a_contributor_who_accepts_everything_loses_weight():
    everything = [feedback(f"C{i}", "t", "accepted", "a2", 5000 + 60 * i) for i in range(25)]
    state, _ = fold([*everything, *_contested()])
    assert state.weights["a2"] < 0.25
    assert decided(state) == ({}, {}, ["t"])
    # the same number of votes with a fair share of rejections keeps the weight
    fair = [feedback(f"C{i}", "t", "accepted" if i % 3 else "rejected", "a2", 5000 + 60 * i)
            for i in range(25)]
    state, _ = fold([*fair, *_contested()])
    assert state.weights["a2"] == 1.0 and decided(state) == ({"t": "consensus"}, {}, [])
