"""The one function that turns artwork metadata into model input text.

Training, the stream and the API all call :func:`build_text`, so the encoder,
the TF-IDF model and the content hash always see the same text.

Fields, in order (empty or missing ones are left out, whitespace collapsed):

1. ``title`` - the strongest signal, first so truncation never drops it;
2. ``group_title`` - e.g. the sketchbook a drawing belongs to;
3. ``artists`` and ``date`` as ``by A, B, 1829``;
4. ``medium`` and ``classification``;
5. ``movements`` as ``movements: ...``;
6. ``inscription`` as ``inscribed: ...``;
7. ``description``.

Dimensions, accession numbers, credit lines and acquisition years are left out:
they say nothing about what the artwork depicts, and they would make two
otherwise identical records hash differently.
"""

from __future__ import annotations

import hashlib
import re

from arttag.events import ArtworkMetadata

_SPACE = re.compile(r"\s+")


def _clean(value: str | None) -> str:
    return _SPACE.sub(" ", value or "").strip().strip(".").strip()


def build_fields(meta: ArtworkMetadata) -> dict[str, str]:
    """The named, cleaned text fields (empty ones dropped) that :func:`build_text` joins."""
    by = ", ".join(a for a in (_clean(x) for x in meta.artists) if a)
    date = _clean(meta.date) or (str(meta.year) if meta.year is not None else "")
    byline = ", ".join(p for p in (by, date) if p)
    fields = {
        "title": _clean(meta.title),
        "group_title": _clean(meta.group_title),
        "artists": f"by {byline}" if byline else "",
        "medium": ", ".join(p for p in (_clean(meta.medium), _clean(meta.classification)) if p),
        "movements": (
            "movements: " + ", ".join(m for m in (_clean(x) for x in meta.movements) if m)
            if any(_clean(x) for x in meta.movements)
            else ""
        ),
        "inscription": f"inscribed: {_clean(meta.inscription)}" if _clean(meta.inscription) else "",
        "description": _clean(meta.description),
    }
    return {name: value for name, value in fields.items() if value}


def build_text(meta: ArtworkMetadata) -> str:
    """Model input text for an artwork, e.g. ``A Fishing Boat in Dieppe Harbour. by Christopher Wood, 1929. Oil paint on canvas, painting``."""
    return ". ".join(build_fields(meta).values())


def text_hash(text: str) -> str:
    """Stable key for a text: the embedding cache key and the events' content hash."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def content_hash(meta: ArtworkMetadata) -> str:
    """Hash of everything in the metadata that can change a suggestion.

    The text and the already-assigned tags both matter (the latter flag
    suggestions as already assigned), and so does the accession number (the
    ``accession`` scorer reads it); a suggestion id names this hash, so two
    records with one id carry the same suggestions. The number is appended only
    when present, so a record without one hashes as its text and tags alone.
    """
    tags = ",".join(sorted(t.id for t in meta.tags))
    accession = f"\x1f{meta.accession_number}" if meta.accession_number else ""
    return text_hash(build_text(meta) + "\x1f" + tags + accession)
