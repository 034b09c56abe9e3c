"""Public consensus: a tag is decided by the crowd only when enough weighted contributors agree.

Example::

    t = tally({"p1": True, "p2": True, "p3": True, "p4": False}, weights)
    consensus(t, min_contributors=3, min_margin=2.0)   # True: accepted
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Tally:
    """Contributors (sorted) and their summed weight on each side; weight 0 does not count."""

    accepting: tuple[str, ...]
    rejecting: tuple[str, ...]
    weight_accepting: float
    weight_rejecting: float


def tally(votes: Mapping[str, bool], weights: Mapping[str, float]) -> Tally:
    """Each contributor's vote (True: accept) with their weight (1.0 when unknown).

    ``math.fsum`` is exact, so the sums do not depend on the order contributors come in.
    """
    accepting = tuple(sorted(c for c, v in votes.items() if v and weights.get(c, 1.0) > 0))
    rejecting = tuple(sorted(c for c, v in votes.items() if not v and weights.get(c, 1.0) > 0))
    return Tally(
        accepting, rejecting,
        math.fsum(weights.get(c, 1.0) for c in accepting),
        math.fsum(weights.get(c, 1.0) for c in rejecting),
    )


def consensus(t: Tally, min_contributors: int, min_margin: float) -> bool | None:
    """True (accepted) or False (rejected) when at least ``min_contributors`` distinct
    contributors agree and their weight exceeds the other side's by at least ``min_margin``
    (and by something, so a tie never decides); None otherwise."""
    margin = t.weight_accepting - t.weight_rejecting
    if len(t.accepting) >= min_contributors and margin >= min_margin and margin > 0:
        return True
    if len(t.rejecting) >= min_contributors and -margin >= min_margin and -margin > 0:
        return False
    return None
