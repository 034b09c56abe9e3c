"""Scorer registry: names to classes, imported lazily so unused scorers cost nothing."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from arttag.errors import ConfigurationError

if TYPE_CHECKING:
    from arttag.scorers.base import Scorer

SCORERS: dict[str, str] = {
    "knn": "arttag.scorers.knn:EmbeddingKnnScorer",
    "tfidf": "arttag.scorers.tfidf:TfidfKnnScorer",
    "semantic": "arttag.scorers.semantic:SemanticScorer",
    "group": "arttag.scorers.group:GroupScorer",
    "artist": "arttag.scorers.group:ArtistScorer",
    "accession": "arttag.scorers.accession:AccessionScorer",
    "mention": "arttag.scorers.mention:MentionScorer",
    "linear": "arttag.scorers.linear:LinearScorer",
    "tfidf_artist": "arttag.scorers.tfidf:SameArtistTfidfScorer",
    "centroid": "arttag.scorers.centroid:CentroidScorer",
    "hybrid": "arttag.scorers.hybrid:HybridKnnScorer",
}


def get_scorer_class(name: str) -> type[Scorer]:
    try:
        target = SCORERS[name]
    except KeyError:
        raise ConfigurationError(f"unknown scorer {name!r}; known: {', '.join(SCORERS)}") from None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
