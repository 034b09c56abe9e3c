"""A public contributor's weight: earned when curators confirm their votes, lost for voting
implausibly fast or accepting everything. One plain function per rule, and their product.

Example::

    weight = contributor_weight(confirmed=8, contradicted=1, vote_times=times,
                                accepted=30, votes=40, rules=CurationRules())
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from itertools import pairwise

from arttag.curation.rules import CurationRules
from arttag.curation.state import Vote


def confirmation_counts(pairs: Iterable[tuple[Vote, Vote | None]]) -> tuple[int, int]:
    """``(confirmed, contradicted)`` over (the contributor's vote, the curator's word) pairs.

    Only a vote cast no later than the curator's word counts: agreeing with a decision
    already made earns nothing.
    """
    confirmed = contradicted = 0
    for vote, word in pairs:
        if word is None or vote.order > word.order:
            continue
        if vote.accept == word.accept:
            confirmed += 1
        else:
            contradicted += 1
    return confirmed, contradicted


def confirmation_weight(confirmed: int, contradicted: int, prior_votes: float) -> float:
    """Twice the share of confirmed votes, starting from ``prior_votes`` pseudo-votes half of
    each kind: 1.0 for a newcomer, towards 2.0 when curators always agree, towards 0 when
    they never do."""
    return 2.0 * (confirmed + prior_votes / 2) / (confirmed + contradicted + prior_votes)


def fast_votes(vote_times: Sequence[datetime], min_seconds: float) -> int:
    """How many votes were cast less than ``min_seconds`` after the contributor's previous one."""
    times = sorted(vote_times)
    return sum((b - a).total_seconds() < min_seconds for a, b in pairwise(times))


def fast_vote_share(vote_times: Sequence[datetime], min_seconds: float) -> float:
    """The share of votes cast less than ``min_seconds`` after the contributor's previous one."""
    if len(vote_times) < 2:
        return 0.0
    return fast_votes(vote_times, min_seconds) / len(vote_times)


def accepts_everything(accepted: int, votes: int, min_votes: int, max_share: float) -> bool:
    """Over at least ``min_votes`` votes, more than ``max_share`` of them accept."""
    return votes >= min_votes and accepted / votes > max_share


def contributor_weight(*, confirmed: int, contradicted: int, vote_times: Sequence[datetime],
                       accepted: int, votes: int, rules: CurationRules) -> float:
    """The product of the rules: confirmation weight, less the fast-vote share, times the
    accept-everything factor when it applies."""
    weight = confirmation_weight(confirmed, contradicted, rules.trust_prior_votes)
    weight *= 1.0 - fast_vote_share(vote_times, rules.min_seconds_between_votes)
    if accepts_everything(accepted, votes, rules.accept_all_min_votes, rules.accept_all_max_share):
        weight *= rules.accept_all_factor
    return weight
