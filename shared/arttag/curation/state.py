"""What the curation fold keeps: per artwork and tag the newest curator word and each
contributor's newest vote, per contributor every vote (for their weight)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from arttag.events import TagFeedbackGiven


@dataclass(frozen=True)
class Vote:
    """One feedback event, reduced to what decisions need. ``accept``: accepted or added."""

    event_id: str
    occurred_at: datetime
    actor_id: str
    accept: bool
    suggestion_id: str | None = None
    model_version: str | None = None

    @property
    def order(self) -> tuple[datetime, str]:
        """Newer means a later ``occurred_at``; the event id breaks ties, so every order of
        arrival picks the same newest vote."""
        return (self.occurred_at, self.event_id)

    @classmethod
    def of(cls, event: TagFeedbackGiven) -> Vote:
        return cls(
            event_id=event.event_id,
            occurred_at=event.occurred_at,
            actor_id=event.actor.id,
            accept=event.action in ("accepted", "added"),
            suggestion_id=event.suggestion_id,
            model_version=event.model_version,
        )


@dataclass
class TagState:
    curator: Vote | None = None
    public: dict[str, Vote] = field(default_factory=dict)
    label: str | None = None
    label_order: tuple[datetime, str] | None = None


@dataclass
class ArtworkState:
    tags: dict[str, TagState] = field(default_factory=dict)
    decisions_id: str | None = None


@dataclass
class ContributorState:
    """Every public vote of one contributor, and the (artwork, tag) pairs they voted on."""

    votes: list[Vote] = field(default_factory=list)
    voted_on: set[tuple[str, str]] = field(default_factory=set)


@dataclass
class CurationState:
    seen: set[str] = field(default_factory=set)
    artworks: dict[str, ArtworkState] = field(default_factory=dict)
    contributors: dict[str, ContributorState] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
