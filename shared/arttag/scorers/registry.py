"""Scorer registry: names to classes, imported lazily so unused scorers cost nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from arttag.plugins import load_plugin

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
    return load_plugin(SCORERS, name, "scorer")
