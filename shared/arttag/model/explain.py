"""Turning the ensemble's ranked candidates into explained :class:`TagSuggestion` events.

Every suggestion carries, per scorer, the score that scorer gave the tag, its
rank among that scorer's own candidates, and the evidence that produced the
score: the training artworks that voted (kNN scorers, exactly the voters),
this artwork's words with the largest contributions (TF-IDF), or the tag text
compared (semantic). The summary is one readable sentence built from them:
each scorer words its own evidence (:meth:`Scorer.summarise_evidence`) and
decides whether it is cited at all (:meth:`Scorer.cites`).
"""

from __future__ import annotations

from collections.abc import Sequence

from arttag.events import (
    ArtworkMetadata,
    Explanation,
    ScorerContribution,
    TagSuggestion,
)
from arttag.model.ensemble import BaseEnsemble, Ranked
from arttag.model.tagger import SuggestOptions
from arttag.scorers.base import Batch, Candidates


def summarise(label: str, confidence: float, evidence_phrases: Sequence[str], scorers_proposing: Sequence[str]) -> str:
    """One sentence: the tag and confidence, what each scorer's evidence shows, who proposed the tag."""
    parts = [f"'{label}' ({confidence:.0%} confidence)", *evidence_phrases]
    if scorers_proposing:
        parts.append("proposed by " + ", ".join(scorers_proposing))
    return "; ".join(parts)


def build_suggestions(
    ensemble: BaseEnsemble,
    metas: Sequence[ArtworkMetadata],
    batch: Batch,
    cands: list[Candidates],
    ranked: list[Ranked],
    options: SuggestOptions,
    max_evidence: int = 5,
) -> list[list[TagSuggestion]]:
    vocab = ensemble.vocabulary
    out: list[list[TagSuggestion]] = []
    for row, (meta, r) in enumerate(zip(metas, ranked)):
        assigned = {t.id for t in meta.tags}
        suggestions: list[TagSuggestion] = []
        for i, tag_index in enumerate(r.tags):
            if len(suggestions) >= options.limit:
                break
            tag = vocab.tags[int(tag_index)]
            confidence = float(min(max(r.probs[i], 0.0), 1.0))
            if confidence < options.min_confidence:
                break  # sorted by probability: nothing further can pass
            if not options.keeps(tag.id, tag.group, assigned):
                continue
            contributions: list[ScorerContribution] = []
            phrases: list[str] = []
            for scorer, c in zip(ensemble.scorers, cands):
                score = float(r.source_scores[scorer.name][i])
                rank = int(r.source_ranks[scorer.name][i])
                if not scorer.cites(score, rank):
                    continue
                evidence = scorer.explain(batch, c, row, int(tag_index), max_evidence)
                contributions.append(ScorerContribution(
                    scorer=scorer.name, score=round(score, 6), rank=rank or None, evidence=evidence,
                ))
                phrases += scorer.summarise_evidence(evidence)
            proposing = r.proposed_by(i)
            suggestions.append(TagSuggestion(
                tag_id=tag.id, label=tag.label, group=tag.group,
                score=round(float(r.probs[i]), 6), confidence=round(confidence, 6),
                scorers=proposing, already_assigned=tag.id in assigned,
                explanation=Explanation(
                    summary=summarise(tag.label, confidence, phrases, proposing),
                    contributions=contributions,
                ),
            ))
        out.append(suggestions)
    return out
