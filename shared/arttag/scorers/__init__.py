"""Tag scorers behind one interface (Annif-style backends): batch in, ranked candidates out."""

from arttag.scorers.base import Batch, Candidates, Corpus, Scorer, ScorerParams
from arttag.scorers.registry import SCORERS, get_scorer_class

__all__ = ["Batch", "Candidates", "Corpus", "Scorer", "ScorerParams", "SCORERS", "get_scorer_class"]
