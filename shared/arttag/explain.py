"""Turning the ensemble's ranked candidates into explained :class:`TagSuggestion` events.

Every suggestion carries, per scorer, the score that scorer gave the tag, its
rank among that scorer's own candidates, and the evidence that produced the
score: the training artworks that voted (kNN scorers, exactly the voters),
this artwork's words with the largest contributions (TF-IDF), or the tag text
compared (semantic). The summary is one readable sentence built from them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from arttag.ensemble import Ensemble, Ranked
from arttag.events import (
    ArtworkMetadata,
    Explanation,
    NeighbourEvidence,
    ScorerContribution,
    TagSuggestion,
    TagTextEvidence,
    TermEvidence,
)
from arttag.scorers.base import Batch, Candidates, Scorer
from arttag.scorers.knn import KnnVoting
from arttag.tagger import SuggestOptions


def _keep(tag_id: str, group: str | None, assigned: set[str], options: SuggestOptions) -> bool:
    if options.include_tags is not None and tag_id not in options.include_tags:
        return False
    if tag_id in options.exclude_tags:
        return False
    if options.include_groups is not None and (group or "") not in options.include_groups:
        return False
    if (group or "") in options.exclude_groups:
        return False
    if options.only_new and tag_id in assigned:
        return False
    return True


def summarise(label: str, confidence: float, contributions: list[ScorerContribution], scorers_proposing: list[str],
              cited_artworks: Mapping[str, str] | None = None) -> str:
    """One sentence; ``cited_artworks`` maps scorer names to their :attr:`Scorer.cited_artworks`."""
    cited_artworks = cited_artworks or {}
    parts = [f"'{label}' ({confidence:.0%} confidence)"]
    for c in contributions:
        neighbours = [e for e in c.evidence if isinstance(e, NeighbourEvidence)]
        terms = [e for e in c.evidence if isinstance(e, TermEvidence)]
        texts = [e for e in c.evidence if isinstance(e, TagTextEvidence)]
        if neighbours:
            best = neighbours[0]
            relation = cited_artworks.get(c.scorer, Scorer.cited_artworks)
            parts.append(f"{c.scorer}: {len(neighbours)} {relation} carry it "
                         f"(closest '{best.title}', similarity {best.similarity:.2f})")
        if terms:
            parts.append(f"{c.scorer} words: " + ", ".join(f"'{t.term}' ({t.field})" for t in terms[:3]))
        if texts:
            parts.append(f"{c.scorer}: tag text '{texts[0].tag_text}' similarity {texts[0].similarity:.2f}")
    if scorers_proposing:
        parts.append("proposed by " + ", ".join(scorers_proposing))
    return "; ".join(parts)


def build_suggestions(
    ensemble: Ensemble,
    metas: Sequence[ArtworkMetadata],
    batch: Batch,
    cands: list[Candidates],
    ranked: list[Ranked],
    options: SuggestOptions,
    max_evidence: int = 5,
) -> list[list[TagSuggestion]]:
    vocab = ensemble.vocabulary
    cited = {s.name: s.cited_artworks for s in ensemble.scorers}
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
            if not _keep(tag.id, tag.group, assigned, options):
                continue
            contributions = []
            for scorer, c in zip(ensemble.scorers, cands):
                score = float(r.source_scores[scorer.name][i])
                rank = int(r.source_ranks[scorer.name][i])
                if score <= 0 and rank == 0:
                    continue
                if isinstance(scorer, KnnVoting) and score <= 0:
                    continue
                contributions.append(ScorerContribution(
                    scorer=scorer.name, score=round(score, 6), rank=rank or None,
                    evidence=scorer.explain(batch, c, row, int(tag_index), max_evidence),
                ))
            proposing = r.proposed_by(i)
            suggestions.append(TagSuggestion(
                tag_id=tag.id, label=tag.label, group=tag.group,
                score=round(float(r.probs[i]), 6), confidence=round(confidence, 6),
                scorers=proposing, already_assigned=tag.id in assigned,
                explanation=Explanation(
                    summary=summarise(tag.label, confidence, contributions, proposing, cited),
                    contributions=contributions,
                ),
            ))
        out.append(suggestions)
    return out
