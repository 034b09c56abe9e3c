"""An artwork's folded feedback as a ``TagDecisionsChanged``: the curator's word where there is one."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from arttag.curation.rules import CurationRules
from arttag.curation.state import ArtworkState, TagState
from arttag.events import TagDecision, TagDecisionsChanged


def decide_tag(tag_id: str, tag: TagState, weights: Mapping[str, float],
               rules: CurationRules) -> tuple[bool, TagDecision] | None:
    """``(accepted, decision)`` for a decided tag; None while it is only proposed.

    A curator's newest word decides, whatever the public said.
    """
    accept_votes = sorted(c for c, v in tag.public.items() if v.accept)
    reject_votes = sorted(c for c, v in tag.public.items() if not v.accept)
    if tag.curator is not None:
        accepted = tag.curator.accept
        agree, disagree = (accept_votes, reject_votes) if accepted else (reject_votes, accept_votes)
        return accepted, TagDecision(
            tag_id=tag_id, tag_label=tag.label, decided_by="curator", curator_id=tag.curator.actor_id,
            contributors=[], votes_for=len(agree), votes_against=len(disagree),
            event_id=tag.curator.event_id, decided_at=tag.curator.occurred_at,
            suggestion_id=tag.curator.suggestion_id, model_version=tag.curator.model_version,
        )
    return None


def artwork_decisions(artwork_id: str, artwork: ArtworkState, weights: Mapping[str, float],
                      rules: CurationRules) -> TagDecisionsChanged:
    """The record ``tags.decisions.v1`` holds for the artwork; a function of the state alone."""
    accepted, rejected, proposed = [], [], []
    for tag_id in sorted(artwork.tags):
        outcome = decide_tag(tag_id, artwork.tags[tag_id], weights, rules)
        if outcome is None:
            proposed.append(tag_id)
        else:
            (accepted if outcome[0] else rejected).append(outcome[1])
    body = {
        "artwork_id": artwork_id,
        "accepted": [d.model_dump(mode="json") for d in accepted],
        "rejected": [d.model_dump(mode="json") for d in rejected],
        "proposed": proposed,
    }
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode("utf-8")).hexdigest()[:32]
    return TagDecisionsChanged(decisions_id=digest, artwork_id=artwork_id, accepted=accepted,
                               rejected=rejected, proposed=proposed)
