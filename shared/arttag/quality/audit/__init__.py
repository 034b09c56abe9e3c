"""Data-quality audit of a catalogue's tags: one small module per check, run by :func:`run_audit`.

Each check takes catalogue records (and, where it needs one, an encoder or
suggestions from a trained tagger) and returns a JSON-ready ``dict``; the
report module turns those dicts into ``audit.json`` and a self-contained
``audit.html``. Nothing here imports matplotlib until a report is drawn.
"""

from __future__ import annotations

from arttag.quality.audit.runner import AuditOptions, run_audit

__all__ = ["AuditOptions", "run_audit"]
