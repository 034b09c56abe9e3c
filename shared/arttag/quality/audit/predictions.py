"""Running a trained tagger over catalogue records in batches, with a progress bar."""

from __future__ import annotations

from collections.abc import Sequence

from tqdm import tqdm

from arttag.catalogue.records import CatalogueRecord
from arttag.events import TagSuggestion
from arttag.model.tagger import SuggestOptions, Tagger


def suggest_records(
    tagger: Tagger,
    records: Sequence[CatalogueRecord],
    limit: int = 20,
    batch_size: int = 64,
    progress: bool = True,
) -> list[list[TagSuggestion]]:
    """Suggestions for every record, assigned tags included (flagged ``already_assigned``)."""
    options = SuggestOptions(limit=limit)
    out: list[list[TagSuggestion]] = []
    for start in tqdm(range(0, len(records), batch_size), desc="suggesting", unit="batch",
                      disable=not progress):
        batch = records[start:start + batch_size]
        out.extend(tagger.suggest([r.metadata for r in batch], options))
    return out
