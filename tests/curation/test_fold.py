"""The curation fold: curator decisions, deduplication by event id, replay determinism
(with contributor weights and consensus in play)."""

from __future__ import annotations

import random

from arttag.curation.feedback import decode_feedback
from arttag.curation.fold import apply, decisions_of
from arttag.curation.rules import CurationRules
from arttag.curation.state import CurationState
from arttag.events import encode_event

from .helpers import T0, curator, feedback

RULES = CurationRules()


def fold(events, rules=RULES):
    state = CurationState()
    changed = []
    for event in events:
        state, now = apply(state, event, rules)
        changed.append(now)
    return state, changed


def records(state, rules=RULES):
    return {a: decisions_of(state, a, rules) for a in sorted(state.artworks)}


def test_a_curator_accepts_rejects_and_adds_with_provenance():
    state, changed = fold([
        curator("A1", "t-harbour", "accepted", 10, suggestion_id="A1:1:abc:m1", model_version="m1",
                tag_label="harbour"),
        curator("A1", "t-dog", "rejected", 20),
        curator("A1", "t-sea", "added", 30, who="cur-2"),
    ])
    assert changed == [{"A1"}, {"A1"}, {"A1"}]
    record = decisions_of(state, "A1", RULES)
    assert [d.tag_id for d in record.accepted] == ["t-harbour", "t-sea"]
    assert [d.tag_id for d in record.rejected] == ["t-dog"]
    harbour = record.accepted[0]
    assert (harbour.decided_by, harbour.curator_id, harbour.tag_label) == ("curator", "cur-1", "harbour")
    assert (harbour.suggestion_id, harbour.model_version) == ("A1:1:abc:m1", "m1")
    assert harbour.decided_at.timestamp() == T0.timestamp() + 10
    assert record.accepted[1].curator_id == "cur-2"


def test_the_newest_curator_word_wins_by_event_time_not_arrival():
    later = curator("A1", "t", "rejected", 50)
    earlier = curator("A1", "t", "accepted", 10)
    state, changed = fold([later, earlier])
    record = decisions_of(state, "A1", RULES)
    assert [d.event_id for d in record.rejected] == [later.event_id] and record.accepted == []
    assert changed[1] == frozenset()  # the older word changes nothing


def test_a_duplicate_event_id_changes_nothing():
    event = curator("A1", "t", "accepted", 10)
    state, changed = fold([event, event, curator("A1", "t", "accepted", 10, event_id=event.event_id)])
    assert changed == [{"A1"}, frozenset(), frozenset()]
    assert state.seen == {event.event_id}


def test_public_votes_alone_leave_a_tag_proposed_until_consensus():
    state, _ = fold([feedback("A1", "t", "accepted", "p1", 10)])
    record = decisions_of(state, "A1", RULES)
    assert record.proposed == ["t"] and record.accepted == [] and record.rejected == []


def test_only_a_change_of_the_record_is_reported():
    state, changed = fold([
        curator("A1", "t", "accepted", 10),
        curator("A1", "t", "accepted", 20),     # same decision, newer provenance: a new record
        feedback("A1", "t", "rejected", "p1", 30),  # one more vote against
        feedback("A1", "t", "rejected", "p1", 5),   # p1's older vote: p1 still votes against
    ])
    assert changed == [{"A1"}, {"A1"}, {"A1"}, frozenset()]
    [decision] = decisions_of(state, "A1", RULES).accepted
    assert (decision.decided_at - T0).total_seconds() == 20 and decision.votes_against == 1


def test_decisions_id_names_the_content():
    one, _ = fold([curator("A1", "t", "accepted", 10, event_id="e1")])
    two, _ = fold([curator("A1", "t", "accepted", 10, event_id="e1")])
    other, _ = fold([curator("A1", "t", "rejected", 10, event_id="e1")])
    assert records(one) == records(two)
    assert records(one)["A1"].decisions_id != records(other)["A1"].decisions_id


def _history(seed: int) -> list:
    rng = random.Random(seed)
    events = []
    for i in range(300):
        artwork, tag = f"A{rng.randrange(12)}", f"t{rng.randrange(5)}"
        action = rng.choice(["accepted", "rejected", "added"])
        at = rng.randrange(10_000)
        if rng.random() < 0.2:
            events.append(curator(artwork, tag, action, at, who=f"cur-{rng.randrange(2)}"))
        else:
            events.append(feedback(artwork, tag, action, f"p{rng.randrange(8)}", at))
    return events + rng.sample(events, 30)  # redelivered duplicates


def test_any_arrival_order_of_the_same_events_yields_the_same_decisions():
    events = _history(1)
    expected = records(fold(events)[0])
    decided_by = {d.decided_by for r in expected.values() for d in [*r.accepted, *r.rejected]}
    assert decided_by == {"curator", "consensus"}
    for seed in range(5):
        shuffled = list(events)
        random.Random(seed).shuffle(shuffled)
        assert records(fold(shuffled)[0]) == expected


def test_replay_after_encoding_yields_the_same_records():
    events = _history(2)
    replayed = [decode_feedback(encode_event(e)) for e in events]
    assert records(fold(replayed)[0]) == records(fold(events)[0])


def test_the_published_records_track_the_state():
    """Applying the changed sets as a publisher would leaves, per artwork, the final record."""
    events = _history(3)
    state = CurationState()
    topic = {}
    for event in events:
        state, changed = apply(state, event, RULES)
        for artwork_id in changed:
            topic[artwork_id] = decisions_of(state, artwork_id, RULES)
    assert topic == records(state)


def test_reading_ignores_fields_a_newer_writer_adds():
    raw = encode_event(curator("A1", "t", "accepted", 10))[:-1] + b', "new_field": 1}'
    event = decode_feedback(raw)
    assert event.artwork_id == "A1"


def test_a_time_without_a_zone_is_read_as_utc_and_ordered_with_the_others():
    aware = curator("A1", "t", "accepted", 10)
    naive = encode_event(curator("A1", "t", "rejected", 20)).replace(b'+00:00"', b'"').replace(b'Z"', b'"')
    event = decode_feedback(naive)
    assert event.occurred_at.tzinfo is not None
    state, _ = fold([aware, event])
    assert [d.tag_id for d in decisions_of(state, "A1", RULES).rejected] == ["t"]
