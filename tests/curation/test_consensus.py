"""Public consensus: k distinct contributors, a weighted margin, weight 0 not counting."""

from __future__ import annotations

import pytest
from arttag.curation.consensus import Tally, consensus, tally


def test_tally_sorts_contributors_and_sums_weights_with_unknown_as_one():
    t = tally({"p3": True, "p1": True, "p2": False}, {"p1": 1.5})
    assert t == Tally(("p1", "p3"), ("p2",), 2.5, 1.0)


def test_contributors_of_weight_zero_do_not_count():
    t = tally({"p1": True, "p2": True}, {"p2": 0.0})
    assert t.accepting == ("p1",) and t.weight_accepting == 1.0


def test_sums_do_not_depend_on_the_order_of_contributors():
    weights = {f"p{i}": 0.1 * (i % 7) + 1e-9 * i for i in range(50)}
    votes = {c: True for c in weights}
    reordered = dict(reversed(list(votes.items())))
    assert tally(votes, weights) == tally(reordered, dict(reversed(list(weights.items()))))


@pytest.mark.parametrize("accepting, rejecting, expected", [
    (3, 0, True),    # k = 3 agree, margin 3
    (2, 0, None),    # too few contributors
    (3, 1, True),    # margin 2: just enough
    (4, 3, None),    # enough contributors, margin 1 too small
    (0, 3, False),   # the same rule for rejections
    (1, 4, False),
    (3, 3, None),
])
def test_k_contributors_and_a_margin_decide(accepting, rejecting, expected):
    votes = {f"a{i}": True for i in range(accepting)} | {f"r{i}": False for i in range(rejecting)}
    assert consensus(tally(votes, {}), min_contributors=3, min_margin=2.0) is expected


def test_the_margin_is_weighted():
    votes = {"a1": True, "a2": True, "a3": True, "r1": False}
    assert consensus(tally(votes, {"r1": 1.5}), 3, 2.0) is None  # 3 - 1.5 < 2
    assert consensus(tally(votes, {"a1": 2.0}), 3, 2.0) is True  # 4 - 1 >= 2


def test_a_tie_never_decides_even_with_margin_zero():
    votes = {"a1": True, "r1": False}
    assert consensus(tally(votes, {}), min_contributors=1, min_margin=0.0) is None
    assert consensus(tally({"a1": True}, {}), min_contributors=1, min_margin=0.0) is True
