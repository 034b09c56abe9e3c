"""What the review page shows of one artwork: its record, each suggestion with a readable
explanation and its curation state, and the tags with feedback that were not suggested.

Built from the curation service layer's card (:func:`arttag_api.curation.artwork_card`);
pure, so tests build it from plain events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from arttag.events import ArtworkMetadata, AssignedTag, TagFeedbackGiven, TagSuggestion

from arttag_api.web.explain import ReadableExplanation, readable


@dataclass(frozen=True)
class TagState:
    """One tag's curation state, as ``GET /v1/artworks/{id}/decisions`` reports it."""

    status: str = "proposed"  # accepted | rejected | proposed
    decided_by: str | None = None  # curator | consensus | None
    curator_id: str | None = None
    decided_at: Any = None
    votes_for: int = 0
    votes_against: int = 0
    votes: tuple[tuple[str, str], ...] = ()  # (contributor id, accept|reject), curators only

    @classmethod
    def of(cls, raw: Mapping[str, Any] | Any) -> TagState:
        get = raw.get if isinstance(raw, Mapping) else (lambda k, d=None: getattr(raw, k, d))
        votes = []
        for vote in get("votes", None) or ():
            vget = vote.get if isinstance(vote, Mapping) else (lambda k, d=None, v=vote: getattr(v, k, d))
            votes.append((str(vget("contributor_id")), str(vget("vote"))))
        return cls(status=get("status", "proposed") or "proposed", decided_by=get("decided_by", None),
                   curator_id=get("curator_id", None), decided_at=get("decided_at", None),
                   votes_for=int(get("votes_for", 0) or 0), votes_against=int(get("votes_against", 0) or 0),
                   votes=tuple(votes))

    @property
    def decided(self) -> bool:
        return self.status in ("accepted", "rejected")


@dataclass(frozen=True)
class TagRow:
    anchor: str
    tag_id: str
    label: str
    group: str | None
    state: TagState
    assigned: bool
    suggestion: TagSuggestion | None = None
    explanation: ReadableExplanation | None = None
    held: TagFeedbackGiven | None = None  # this person's action on it, not yet published

    @property
    def confidence_pct(self) -> int | None:
        return None if self.suggestion is None else round(100 * self.suggestion.confidence)


@dataclass(frozen=True)
class CardView:
    artwork_id: str
    artwork: ArtworkMetadata | None
    model_version: str | None
    suggestion_id: str | None
    suggestions: list[TagRow]
    others: list[TagRow]  # tags with feedback that are not among the suggestions
    assigned: list[AssignedTag] = field(default_factory=list)

    @property
    def title(self) -> str:
        return self.artwork.title if self.artwork is not None else f"Artwork {self.artwork_id}"


def build_card(artwork_id: str, artwork: ArtworkMetadata | None, suggestions: Sequence[TagSuggestion],
               *, model_version: str | None, suggestion_id: str | None,
               states: Mapping[str, TagState], labels: Mapping[str, tuple[str, str | None]] | None = None,
               held: TagFeedbackGiven | None = None) -> CardView:
    """``states``: tag id -> its curation state; ``labels``: tag id -> (label, group) for tags
    that only have feedback; ``held``: the viewer's action not yet published, shown on its tag."""
    assigned = {t.id for t in artwork.tags} if artwork is not None else set()
    rows, seen = [], set()
    for n, s in enumerate(suggestions, start=1):
        seen.add(s.tag_id)
        rows.append(TagRow(
            anchor=f"s{n}", tag_id=s.tag_id, label=s.label, group=s.group,
            state=states.get(s.tag_id, TagState()), assigned=s.already_assigned or s.tag_id in assigned,
            suggestion=s, explanation=readable(s, artwork),
            held=held if held is not None and held.tag_id == s.tag_id else None,
        ))
    others = []
    extra = [t for t in states if t not in seen]
    if held is not None and held.artwork_id == artwork_id and held.tag_id not in seen and held.tag_id not in states:
        extra.append(held.tag_id)
    for n, tag_id in enumerate(extra, start=1):
        label, group = (labels or {}).get(tag_id, (tag_id, None))
        if held is not None and held.tag_id == tag_id and held.tag_label:
            label = held.tag_label
        others.append(TagRow(anchor=f"o{n}", tag_id=tag_id, label=label, group=group,
                             state=states.get(tag_id, TagState()), assigned=tag_id in assigned,
                             held=held if held is not None and held.tag_id == tag_id else None))
    return CardView(artwork_id=artwork_id, artwork=artwork, model_version=model_version,
                    suggestion_id=suggestion_id, suggestions=rows, others=others,
                    assigned=list(artwork.tags) if artwork is not None else [])
