"""Size limits of what arttag accepts and produces, in one place for the contracts, worker, API and CLI.

Every incoming artwork is bounded field by field and as a whole, so no message
can make the model, the explanations or an output record arbitrarily large;
docs/worker-robustness.md lists them with the reasons. Tate's largest values
are far below each (titles up to 320 characters, 52 tags, 500 characters of
text in all).
"""

from __future__ import annotations

MAX_ID_CHARS = 256
"""Artwork ids, event ids, the event source and assigned tag ids."""

MAX_SHORT_TEXT_CHARS = 2_000
"""Each one-line field: title, date, medium, classification, dimensions, group title, one artist,
one movement, a tag's label and group."""

MAX_LONG_TEXT_CHARS = 20_000
"""Each free-text field: inscription, description."""

MAX_TEXT_CHARS = 50_000
"""All text of one artwork together (every string field, list items and assigned tags included)."""

MAX_LIST_ITEMS = 200
"""Artists, movements."""

MAX_TAGS = 1_000
"""Tags already assigned to one artwork."""

MAX_ACCESSION_CHARS = 64

YEAR_MIN = -100_000
YEAR_MAX = 100_000
"""Years (``year``, ``acquisition_year``): wide enough for any collection, small enough to stay a number."""

MAX_REVISION = 2**63 - 1
"""Revisions fit a signed 64-bit integer, as consumers in other languages read them."""

MAX_EVENT_BYTES = 512 * 1024
"""An incoming message larger than this is dead-lettered unread (reason ``too_large``)."""

MAX_JSON_DEPTH = 200
"""Nesting deeper than this is invalid JSON to the parser (pydantic-core's, which stops there)."""

DEFAULT_MAX_RECORD_BYTES = 512 * 1024
"""Default of ``ARTTAG_MAX_RECORD_BYTES``: no record the worker publishes (key, value and headers)
is larger; Kafka's default ``message.max.bytes`` is 1 MiB."""

MIN_RECORD_BYTES = 64 * 1024
"""The smallest ``ARTTAG_MAX_RECORD_BYTES`` allowed: a shortened dead letter always fits."""

DEAD_LETTER_PREFIX_BYTES = 1_024
"""How much of an original key and value a shortened dead letter keeps."""

MAX_ERROR_CHARS = 2_000
"""Error text in a dead letter; longer messages are cut with a note of the length."""
