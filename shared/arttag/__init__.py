"""arttag: event-driven tag suggestions with explanations for art collections."""

__version__ = "0.1.0"
