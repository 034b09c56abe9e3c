"""Contributor weight, rule by rule: curators' confirmations, fast votes, accepting everything."""

from __future__ import annotations

from datetime import timedelta

import pytest
from arttag.curation.rules import CurationRules
from arttag.curation.state import Vote
from arttag.curation.trust import (
    accepts_everything,
    confirmation_counts,
    confirmation_weight,
    contributor_weight,
    fast_vote_share,
)

from .helpers import T0


def vote(at: float, accept: bool, event_id: str = "e") -> Vote:
    return Vote(event_id=event_id, occurred_at=T0 + timedelta(seconds=at), actor_id="x", accept=accept)


def test_a_vote_counts_only_when_a_curator_decided_after_it():
    pairs = [
        (vote(10, True), vote(20, True)),    # confirmed
        (vote(10, True), vote(20, False)),   # contradicted
        (vote(30, True), vote(20, True)),    # agreed after the decision: nothing earned
        (vote(10, False), None),             # no curator word yet
    ]
    assert confirmation_counts(pairs) == (1, 1)


def test_confirmation_weight_starts_at_one_and_moves_with_the_verdicts():
    assert confirmation_weight(0, 0, 2.0) == 1.0
    assert confirmation_weight(8, 0, 2.0) == pytest.approx(1.8)
    assert confirmation_weight(0, 8, 2.0) == pytest.approx(0.2)
    assert confirmation_weight(4, 4, 2.0) == 1.0
    # a larger prior moves more slowly
    assert confirmation_weight(8, 0, 10.0) < confirmation_weight(8, 0, 2.0)


def test_fast_vote_share_counts_gaps_below_the_minimum_in_time_order():
    times = [T0 + timedelta(seconds=s) for s in (0, 1, 10, 10.5, 30)]
    assert fast_vote_share(times, 2.0) == pytest.approx(2 / 5)
    assert fast_vote_share(list(reversed(times)), 2.0) == pytest.approx(2 / 5)
    assert fast_vote_share(times[:1], 2.0) == 0.0
    assert fast_vote_share(times, 0.0) == 0.0


def test_accepts_everything_needs_enough_votes_and_a_share_above_the_limit():
    assert accepts_everything(20, 20, min_votes=20, max_share=0.95)
    assert not accepts_everything(19, 19, min_votes=20, max_share=0.95)   # too few votes
    assert not accepts_everything(19, 20, min_votes=20, max_share=0.95)   # 0.95 is not above
    assert accepts_everything(97, 100, min_votes=20, max_share=0.95)


def test_the_weight_is_the_product_of_the_rules():
    rules = CurationRules()
    slow = [T0 + timedelta(minutes=i) for i in range(10)]
    base = contributor_weight(confirmed=2, contradicted=0, vote_times=slow, accepted=5, votes=10, rules=rules)
    assert base == pytest.approx(confirmation_weight(2, 0, rules.trust_prior_votes))
    burst = [T0 + timedelta(seconds=i) for i in range(10)]  # nine of ten a second after the last
    assert contributor_weight(confirmed=2, contradicted=0, vote_times=burst, accepted=5, votes=10,
                              rules=rules) == pytest.approx(base * 0.1)
    everything = [T0 + timedelta(minutes=i) for i in range(20)]
    assert contributor_weight(confirmed=2, contradicted=0, vote_times=everything, accepted=20,
                              votes=20, rules=rules) == pytest.approx(base * rules.accept_all_factor)
