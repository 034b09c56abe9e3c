"""Topic names and their configuration; the one place they are spelled."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TopicSpec:
    name: str
    description: str
    compacted: bool = False
    retention_ms: int | None = 7 * 24 * 3600 * 1000
    extra_config: dict[str, str] = field(default_factory=dict)

    def config(self) -> dict[str, str]:
        config = dict(self.extra_config)
        if self.compacted:
            config["cleanup.policy"] = "compact"
            config.setdefault("min.compaction.lag.ms", "0")
            config.setdefault("segment.ms", str(3600 * 1000))
        elif self.retention_ms is not None:
            config["retention.ms"] = str(self.retention_ms)
        return config


ARTWORKS_CREATED = "artworks.created.v1"
ARTWORKS_UPDATED = "artworks.updated.v1"
TAG_SUGGESTIONS = "tags.suggestions.v1"
TAG_SUGGESTIONS_LATEST = "tags.suggestions.latest.v1"
TAG_FEEDBACK = "tags.feedback.v1"
TAG_DECISIONS = "tags.decisions.v1"
DEAD_LETTERS = "arttag.deadletter.v1"

TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(ARTWORKS_CREATED, "ArtworkCreated events from the catalogue; key = artwork id",
              retention_ms=-1),
    TopicSpec(ARTWORKS_UPDATED, "ArtworkUpdated events from the catalogue; key = artwork id",
              retention_ms=-1),
    TopicSpec(TAG_SUGGESTIONS, "TagSuggestionsPublished, one per artwork revision and model version"),
    TopicSpec(TAG_SUGGESTIONS_LATEST, "Latest TagSuggestionsPublished per artwork (compacted)",
              compacted=True),
    TopicSpec(TAG_FEEDBACK, "TagFeedbackGiven from curators and the public; key = artwork id",
              retention_ms=-1),
    TopicSpec(TAG_DECISIONS, "TagDecisionsChanged: each artwork's accepted and rejected tags, "
              "folded from the feedback by `arttag curate` (compacted)", compacted=True),
    TopicSpec(DEAD_LETTERS, "DeadLetter records: messages that could not be processed",
              retention_ms=30 * 24 * 3600 * 1000),
)


def topic_name(base: str, prefix: str = "") -> str:
    return f"{prefix}{base}"


@dataclass(frozen=True)
class StreamTopics:
    """The full names of the topics the stream reads and writes, under one prefix."""

    created: str
    updated: str
    suggestions: str
    latest: str
    dead_letters: str
    feedback: str

    @classmethod
    def for_prefix(cls, prefix: str) -> StreamTopics:
        return cls(
            created=topic_name(ARTWORKS_CREATED, prefix),
            updated=topic_name(ARTWORKS_UPDATED, prefix),
            suggestions=topic_name(TAG_SUGGESTIONS, prefix),
            latest=topic_name(TAG_SUGGESTIONS_LATEST, prefix),
            dead_letters=topic_name(DEAD_LETTERS, prefix),
            feedback=topic_name(TAG_FEEDBACK, prefix),
        )
