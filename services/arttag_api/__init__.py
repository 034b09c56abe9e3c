"""The arttag HTTP API: tag suggestions with explanations, latest suggestions, feedback, vocabulary."""

from arttag_api.app import create_app

__all__ = ["create_app"]
