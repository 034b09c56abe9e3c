"""The parameters of every curation rule, in one frozen value the fold is given."""

from __future__ import annotations

from dataclasses import dataclass

from arttag.settings import CurateSettings


@dataclass(frozen=True)
class CurationRules:
    """Defaults equal :class:`arttag.settings.CurateSettings`'s; see docs/curation.md."""

    min_contributors: int = 3
    min_margin: float = 2.0
    trust_prior_votes: float = 2.0
    min_seconds_between_votes: float = 2.0
    accept_all_min_votes: int = 20
    accept_all_max_share: float = 0.95
    accept_all_factor: float = 0.2

    @classmethod
    def from_settings(cls, settings: CurateSettings) -> CurationRules:
        return cls(
            min_contributors=settings.consensus_min_contributors,
            min_margin=settings.consensus_min_margin,
            trust_prior_votes=settings.trust_prior_votes,
            min_seconds_between_votes=settings.min_seconds_between_votes,
            accept_all_min_votes=settings.accept_all_min_votes,
            accept_all_max_share=settings.accept_all_max_share,
            accept_all_factor=settings.accept_all_factor,
        )
