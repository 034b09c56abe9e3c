"""One exception root for arttag, carrying the context needed at the edges."""

from __future__ import annotations


class ArttagError(Exception):
    """Base of every error arttag raises on purpose.

    ``context`` holds machine-readable details (field, artwork id, topic...)
    that edges translate: problem JSON over HTTP, a dead-letter record in the
    stream, a message in the CLI.
    """

    def __init__(self, message: str, **context: object) -> None:
        super().__init__(message)
        self.message = message
        self.context = context

    def __str__(self) -> str:
        return self.message


class EventDecodeError(ArttagError):
    """Bytes that are not a valid event: undecodable, not JSON, or schema-invalid."""


class CatalogueError(ArttagError):
    """A catalogue file that cannot be read at all (single bad rows are skipped)."""


class ModelError(ArttagError):
    """A model directory or bundle that is missing, corrupt or incompatible."""


class ConfigurationError(ArttagError):
    """Settings that cannot work together."""
