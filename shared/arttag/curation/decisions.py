"""An artwork's folded feedback as a ``TagDecisionsChanged``: the curator's word, else the consensus."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from arttag.curation.consensus import consensus, tally
from arttag.curation.rules import CurationRules
from arttag.curation.state import ArtworkState, TagState
from arttag.events import TagDecision, TagDecisionsChanged


def decide_tag(tag_id: str, tag: TagState, weights: Mapping[str, float],
               rules: CurationRules) -> tuple[bool, TagDecision] | None:
    """``(accepted, decision)`` for a decided tag; None while it is only proposed.

    A curator's newest word decides, whatever the public said; without one, the public's
    weighted consensus (:mod:`arttag.curation.consensus`) may.
    """
    t = tally({c: v.accept for c, v in tag.public.items()}, weights)
    word = tag.curator
    if word is not None:
        agree, disagree = (t.accepting, t.rejecting) if word.accept else (t.rejecting, t.accepting)
        return word.accept, TagDecision(
            tag_id=tag_id, tag_label=tag.label, decided_by="curator", curator_id=word.actor_id,
            contributors=[], votes_for=len(agree), votes_against=len(disagree),
            event_id=word.event_id, decided_at=word.occurred_at,
            suggestion_id=word.suggestion_id, model_version=word.model_version,
        )
    outcome = consensus(t, rules.min_contributors, rules.min_margin)
    if outcome is None:
        return None
    agree, disagree = (t.accepting, t.rejecting) if outcome else (t.rejecting, t.accepting)
    newest = max((tag.public[c] for c in agree), key=lambda v: v.order)
    return outcome, TagDecision(
        tag_id=tag_id, tag_label=tag.label, decided_by="consensus", curator_id=None,
        contributors=list(agree), votes_for=len(agree), votes_against=len(disagree),
        event_id=newest.event_id, decided_at=newest.occurred_at,
        suggestion_id=newest.suggestion_id, model_version=newest.model_version,
    )


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
