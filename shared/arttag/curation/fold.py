"""The curation fold: one feedback event into the state, and which artworks' decisions changed.

``apply`` is deterministic and order-independent in its result: after any arrival order of
the same set of events (duplicates included) the decisions are the same, because the newest
vote is chosen by ``(occurred_at, event_id)``, never by arrival, and nothing reads a clock.
Example::

    state = CurationState()
    for event in feedback_events:
        state, changed = apply(state, event, CurationRules())
        for artwork_id in changed:
            publish(state.artworks[artwork_id] ...)
"""

from __future__ import annotations

from arttag.curation.decisions import artwork_decisions
from arttag.curation.rules import CurationRules
from arttag.curation.state import (
    ArtworkState,
    ContributorState,
    CurationState,
    TagState,
    Vote,
)
from arttag.curation.trust import confirmation_counts, contributor_weight
from arttag.events import TagDecisionsChanged, TagFeedbackGiven


def weight_of(state: CurationState, contributor_id: str, rules: CurationRules) -> float:
    """The contributor's weight from everything they voted (:mod:`arttag.curation.trust`)."""
    contributor = state.contributors[contributor_id]
    pairs = []
    for artwork_id, tag_id in contributor.voted_on:
        tag = state.artworks[artwork_id].tags[tag_id]
        pairs.append((tag.public[contributor_id], tag.curator))
    confirmed, contradicted = confirmation_counts(pairs)
    return contributor_weight(
        confirmed=confirmed, contradicted=contradicted,
        vote_times=[v.occurred_at for v in contributor.votes],
        accepted=sum(v.accept for v in contributor.votes), votes=len(contributor.votes), rules=rules,
    )


def decisions_of(state: CurationState, artwork_id: str, rules: CurationRules) -> TagDecisionsChanged:
    return artwork_decisions(artwork_id, state.artworks[artwork_id], state.weights, rules)


def apply(state: CurationState, event: TagFeedbackGiven,
          rules: CurationRules) -> tuple[CurationState, frozenset[str]]:
    """Fold ``event`` into ``state`` (updated in place and returned) and name the artworks
    whose decisions record changed. An event id seen before changes nothing."""
    if event.event_id in state.seen:
        return state, frozenset()
    state.seen.add(event.event_id)
    vote = Vote.of(event)
    artwork = state.artworks.setdefault(event.artwork_id, ArtworkState())
    tag = artwork.tags.setdefault(event.tag_id, TagState())
    if event.tag_label is not None and (tag.label_order is None or vote.order > tag.label_order):
        tag.label, tag.label_order = event.tag_label, vote.order

    touched: set[str] = set()  # contributors whose weight this event may change
    if event.actor.kind == "curator":
        if tag.curator is None or vote.order > tag.curator.order:
            tag.curator = vote
            touched = set(tag.public)  # the curator now confirms or contradicts their votes
    else:
        contributor = state.contributors.setdefault(vote.actor_id, ContributorState())
        contributor.votes.append(vote)
        contributor.voted_on.add((event.artwork_id, event.tag_id))
        current = tag.public.get(vote.actor_id)
        if current is None or vote.order > current.order:
            tag.public[vote.actor_id] = vote
        touched = {vote.actor_id}

    affected = {event.artwork_id}
    for contributor_id in sorted(touched):
        weight = weight_of(state, contributor_id, rules)
        if state.weights.get(contributor_id) != weight:
            state.weights[contributor_id] = weight
            affected |= {a for a, _ in state.contributors[contributor_id].voted_on}

    changed = set()
    for artwork_id in affected:
        record = decisions_of(state, artwork_id, rules)
        if record.decisions_id != state.artworks[artwork_id].decisions_id:
            state.artworks[artwork_id].decisions_id = record.decisions_id
            changed.add(artwork_id)
    return state, frozenset(changed)
