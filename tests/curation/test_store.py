"""The curation database on SQLite and PostgreSQL: rows from the fold's state, upserts after
each batch equal one write of the whole state, tokens survive a reset."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import event
from arttag.curation.fold import apply
from arttag.curation.rules import CurationRules
from arttag.curation.state import CurationState
from arttag.curation.store import CurationStore, TagRow, contributor_row, near_consensus
from arttag.settings import CurateSettings
from arttag_curate.processor import CurateProcessor

from .helpers import curator, feedback


@pytest.fixture
def store(database_url):
    s = CurationStore.open(database_url)
    yield s
    s.close()


def _state(events, rules=CurationRules()) -> CurationState:
    state = CurationState()
    for event in events:
        apply(state, event, rules)
    return state


EVENTS = [
    curator("A1", "t-harbour", "accepted", 100, tag_label="harbour", suggestion_id="s1", model_version="m1"),
    feedback("A1", "t-harbour", "rejected", "p1", 5),
    feedback("A1", "t-harbour", "accepted", "p2", 6),
    curator("A1", "t-dog", "rejected", 20),
    *(feedback("A2", "t-tree", "accepted", f"p{i}", 600 + 100 * i, model_version="m2") for i in range(3, 6)),
    feedback("A3", "t-boat", "accepted", "p3", 50),
    feedback("A3", "t-boat", "accepted", "p4", 51),
    feedback("A3", "t-boat", "rejected", "p4", 70),  # p4 changed their mind: the newer vote counts
]


def test_rows_say_status_who_decided_and_the_votes(store):
    rules = CurationRules()
    state = _state(EVENTS, rules)
    store.write_all(state, rules)

    dog, harbour = store.tags("A1")
    assert (dog.tag_id, dog.status, dog.decided_by, dog.curator_id) == ("t-dog", "rejected", "curator", "cur-1")
    assert (harbour.status, harbour.decided_by, harbour.curator_id, harbour.label) == \
        ("accepted", "curator", "cur-1", "harbour")
    assert (harbour.suggestion_id, harbour.model_version, harbour.event_id) == ("s1", "m1", EVENTS[0].event_id)
    assert harbour.decided_at == EVENTS[0].occurred_at  # zone-aware UTC on both backends
    assert (harbour.votes_for, harbour.votes_against) == (1, 1)

    [tree] = store.tags("A2")
    assert (tree.status, tree.decided_by, tree.curator_id, tree.model_version) == \
        ("accepted", "consensus", None, "m2")
    assert tree.votes_for == 3 and not tree.one_vote_from_consensus

    [boat] = store.tags("A3")
    assert (boat.status, boat.decided_by, boat.decided_at, boat.votes_for, boat.votes_against) == \
        ("proposed", None, None, 1, 1)
    assert {(v.contributor_id, v.vote) for v in store.votes("A3")} == {("p3", "accept"), ("p4", "reject")}
    assert [v.at for v in store.votes("A3") if v.contributor_id == "p4"] == [EVENTS[-1].occurred_at]

    p1, p2 = store.contributor("p1"), store.contributor("p2")
    assert (p1.votes, p1.confirmed, p1.contradicted, p1.accept_share) == (1, 0, 1, 0.0)
    assert (p2.confirmed, p2.contradicted, p2.accept_share) == (1, 0, 1.0)
    assert p2.weight > 1.0 > p1.weight == state.weights["p1"]
    p4 = store.contributor("p4")
    assert (p4.votes, p4.fast_votes, p4.accept_share) == (3, 0, pytest.approx(2 / 3))  # every vote counts
    assert store.contributor("nobody") is None


def test_near_consensus_is_one_newcomer_vote_from_deciding():
    rules = CurationRules(min_contributors=3, min_margin=2.0)
    two = _state([feedback("A", "t", "accepted", f"p{i}", 100 * i) for i in range(2)], rules)
    assert near_consensus(two.artworks["A"].tags["t"], two.weights, rules)
    one = _state([feedback("A", "t", "accepted", "p0", 0)], rules)
    assert not near_consensus(one.artworks["A"].tags["t"], one.weights, rules)
    split = _state([feedback("A", "t", "accepted", "p0", 0), feedback("A", "t", "accepted", "p1", 100),
                    feedback("A", "t", "rejected", "p2", 200), feedback("A", "t", "rejected", "p3", 300)], rules)
    assert not near_consensus(split.artworks["A"].tags["t"], split.weights, rules)  # margin too small
    decided = _state([*(feedback("A", "t", "accepted", f"p{i}", 100 * i) for i in range(2)),
                      curator("A", "t", "accepted", 500)], rules)
    assert not near_consensus(decided.artworks["A"].tags["t"], decided.weights, rules)


def _random_events(seed: int, n: int = 160) -> list:
    """A mix that moves weights: curators confirming and contradicting, fast voters, accept-all."""
    rnd = random.Random(seed)
    events, clock = [], 0.0
    for _ in range(n):
        clock += rnd.choice([0.5, 3.0, 30.0])
        artwork, tag = f"A{rnd.randrange(6)}", f"t{rnd.randrange(4)}"
        if rnd.random() < 0.2:
            events.append(curator(artwork, tag, rnd.choice(["accepted", "rejected", "added"]), clock,
                                  who=rnd.choice(["c1", "c2"])))
        else:
            who = f"p{rnd.randrange(8)}"
            action = "accepted" if who == "p0" or rnd.random() < 0.6 else "rejected"
            events.append(feedback(artwork, tag, action, who, clock))
    events += rnd.sample(events, 10)  # redelivered
    return events


@pytest.mark.parametrize("seed", [1, 2])
def test_upserts_after_each_batch_equal_one_write_of_the_whole_state(database_url, tmp_path, seed):
    settings = CurateSettings(consensus_min_contributors=2, consensus_min_margin=1.0, accept_all_min_votes=5)
    rules = CurationRules.from_settings(settings)
    events = _random_events(seed)
    live = CurationStore.open(database_url)
    processor = CurateProcessor(settings, live)
    rnd = random.Random(seed)
    i = 0
    while i < len(events):
        step = rnd.randrange(1, 12)
        for event in events[i:i + step]:
            processor.fold_event(event)
        processor.project()
        i += step
    whole = CurationStore.open(f"sqlite:///{tmp_path / 'whole.db'}")
    whole.write_all(_state(events, rules), rules)
    assert live.dump() == whole.dump()
    assert live.count(TagRow) > 10 and {r[3] for r in live.dump()["curation_tags"]} >= {"accepted", "proposed"}
    live.close()
    whole.close()


def _upserts(store: CurationStore) -> list[tuple[str, int]]:
    """Every upsert the database is sent from now on: (table, rows), one entry per statement."""
    sent: list[tuple[str, int]] = []

    @event.listens_for(store.engine, "before_execute")
    def _note(conn, clause, multiparams, params, options):
        if getattr(clause, "is_insert", False):
            sent.append((clause.table.name, len(multiparams) if multiparams else 1))

    return sent


def test_a_write_sends_only_new_or_changed_rows_one_statement_a_table(database_url):
    rules = CurationRules()
    state = _state(EVENTS, rules)
    first = CurationStore.open(database_url)
    sent = _upserts(first)
    first.write_all(state, rules)
    assert sent == [("curation_tags", 4), ("curation_votes", 7), ("curation_contributors", 5)]
    sent.clear()
    first.write_all(state, rules)
    assert sent == []
    first.close()

    # a restart refolds everything: the rows the database holds already are not sent again
    again = CurationStore.open(database_url)
    sent = _upserts(again)
    again.write_all(state, rules)
    assert sent == []
    # p2 changes their vote on the harbour: its tag row, their vote and their record change;
    # p1's record does not (the curator's word contradicts their vote as before)
    later = feedback("A1", "t-harbour", "rejected", "p2", 200)
    apply(state, later, rules)
    again.write(state, artwork_ids={"A1", "A2"}, contributor_ids={"p1", "p2"}, rules=rules)
    assert sent == [("curation_tags", 1), ("curation_votes", 1), ("curation_contributors", 1)]
    whole = CurationStore.open("sqlite://")
    whole.write_all(state, rules)
    assert again.dump() == whole.dump()
    # a reset forgets what was held: everything is written again
    sent.clear()
    again.reset()
    again.write_all(state, rules)
    assert sent == [("curation_tags", 4), ("curation_votes", 7), ("curation_contributors", 5)]
    again.close()
    whole.close()


def test_reset_recreates_the_projection_and_keeps_contributor_tokens(store):
    rules = CurationRules()
    store.write_all(_state(EVENTS, rules), rules)
    contributor_id = store.register_contributor("ab" * 32)
    assert contributor_id.startswith("pub-") and len(contributor_id) == 20
    assert store.contributor_for_token("ab" * 32) == contributor_id
    assert store.contributor_for_token("cd" * 32) is None
    store.reset()
    assert store.dump() == {"curation_tags": [], "curation_votes": [], "curation_contributors": []}
    assert store.contributor_for_token("ab" * 32) == contributor_id


def test_contributor_row_counts_match_the_weight_rules():
    rules = CurationRules(min_seconds_between_votes=2.0)
    state = _state([feedback("A", "t1", "accepted", "p1", 0), feedback("A", "t2", "accepted", "p1", 1),
                    feedback("A", "t3", "rejected", "p1", 10), curator("A", "t1", "rejected", 20),
                    curator("A", "t3", "rejected", 20)], rules)
    row = contributor_row(state, "p1", rules)
    assert (row["votes"], row["confirmed"], row["contradicted"], row["fast_votes"]) == (3, 1, 1, 1)
    assert row["accept_share"] == pytest.approx(2 / 3)
    assert row["weight"] == pytest.approx(1.0 * (1 - 1 / 3))


def test_a_bad_url_names_the_setting():
    from arttag.curation.store import StoreError

    with pytest.raises(StoreError, match="ARTTAG_CURATION_DATABASE_URL"):
        CurationStore.open("nosuchdb://x/y")
