"""Turning the ensemble's ranked candidates into explained :class:`TagSuggestion` events.

Every suggestion carries, per scorer, the score that scorer gave the tag, its
rank among that scorer's own candidates, and the evidence that produced the
score: the training artworks that voted (kNN scorers, exactly the voters),
this artwork's words with the largest contributions (TF-IDF), or the tag text
compared (semantic). A cited word names the field of the record it is in (the
date, not the byline the model read it in: :meth:`RecordWords.source`). The summary
is one readable sentence built from the evidence a person can use
(:func:`arttag.model.readable.readable_evidence`: no fragments, stop words or
zero weights; the contributions keep it all): each scorer words its own evidence
(:meth:`Scorer.summarise_evidence`) and decides whether it is cited at all
(:meth:`Scorer.cites`).

Only the tags that are published are explained, and each scorer explains all of
a batch's at once (:meth:`Scorer.explain_many`), so work shared between the tags
of one artwork (its neighbours' words, its own words' components) is done once.
The suggestions are built last, from plain tuples, without validating again what this
code computed (:func:`arttag.events.trusted`), each with its JSON form, which
:func:`arttag.events.encode_event` writes in one pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from arttag.catalogue.record_words import SOURCES, RecordWords
from arttag.errors import ModelError
from arttag.events import (
    ArtworkMetadata,
    Evidence,
    Explanation,
    ScorerContribution,
    TagSuggestion,
    TermEvidence,
    evidence_json,
    remember_json,
    term_evidence,
    trusted,
)
from arttag.model.ensemble import BaseEnsemble, Ranked
from arttag.model.readable import readable_term
from arttag.model.tagger import SuggestOptions
from arttag.scorers.base import Batch, Candidates, Scorer


def summarise(label: str, confidence: float, evidence_phrases: Sequence[str], scorers_proposing: Sequence[str]) -> str:
    """One sentence: the tag and confidence, what each scorer's evidence shows, who proposed the tag."""
    parts = [f"'{label}' ({confidence:.0%} confidence)", *evidence_phrases]
    if scorers_proposing:
        parts.append("proposed by " + ", ".join(scorers_proposing))
    return "; ".join(parts)


@dataclass
class Pick:
    """A tag chosen for publication: its position in the artwork's ranking, and what the scorers say."""

    position: int
    tag: int
    confidence: float
    contributions: list[tuple[str, float, int, list[Evidence]]] = field(default_factory=list)
    """Per citing scorer: its name, score (rounded), rank (1-based, 0: not proposed) and evidence."""
    phrases: list[str] = field(default_factory=list)


def published(metas: Sequence[ArtworkMetadata], ranked: Sequence[Ranked], ensemble: BaseEnsemble,
              options: SuggestOptions) -> list[list[Pick]]:
    """Per artwork, the ranked tags that pass ``options``, best first, at most ``options.limit``."""
    tags = ensemble.vocabulary.tags
    out: list[list[Pick]] = []
    for meta, r in zip(metas, ranked):
        assigned = {t.id for t in meta.tags}
        picks: list[Pick] = []
        for i, (tag_index, prob) in enumerate(zip(r.tags.tolist(), r.probs.tolist())):
            if len(picks) >= options.limit:
                break
            if prob != prob:
                # NaN passes every comparison below, and the suggestion is built unvalidated
                raise ModelError(f"the re-ranker gave tag index {tag_index} no probability (NaN)")
            confidence = min(max(prob, 0.0), 1.0)
            if confidence < options.min_confidence:
                break  # sorted by probability: nothing further can pass
            tag = tags[tag_index]
            if options.keeps(tag.id, tag.group, assigned):
                picks.append(Pick(i, tag_index, confidence))
        out.append(picks)
    return out


class RowEvidence:
    """What :func:`explain_picks` learns about one artwork's cited words, kept for all its tags
    and scorers (their words repeat): the field of the record each is in, and whether a reader
    can use it."""

    def __init__(self, meta: ArtworkMetadata) -> None:
        self.record = RecordWords(meta)
        self._source: dict[tuple[str, str], str] = {}
        self._moved: dict[int, tuple[TermEvidence, TermEvidence]] = {}
        self._readable: dict[tuple[str, str], bool] = {}

    def sort(self, evidence: list[Evidence]) -> tuple[list[Evidence], list[Evidence]]:
        """``evidence`` with each word of a merged field (:data:`SOURCES`) naming the record's
        field it came from (the same list when none moves), and of those the evidence a reader
        can use (:func:`arttag.model.readable.readable_evidence`, each word decided once per
        artwork, and said once)."""
        if TermEvidence not in set(map(type, evidence)):
            # no words (most lists: the neighbour scorers'), so the short way; a plain read of
            # the similarity, as this runs for every cited artwork
            return evidence, [e for e in evidence if e.__dict__["similarity"] > 0]
        out = None
        shown = []
        said: set[tuple[str, str]] = set()  # a word and a character n-gram may be the same letters
        for i, e in enumerate(evidence):
            if type(e) is not TermEvidence:
                if e.__dict__["similarity"] > 0:
                    shown.append(e)
                continue
            field, term = e.field, e.term
            if field in SOURCES:
                own = self._source.get((field, term))
                if own is None:
                    own = self._source[(field, term)] = self.record.source(field, term)
                if own != field:
                    # one moved copy per evidence object, so what the scorer shared stays shared;
                    # the original is held with it, so its id cannot be reused by another
                    hit = self._moved.get(id(e))
                    if hit is None:
                        hit = self._moved[id(e)] = (e, term_evidence(own, term, e.weight))
                    moved = hit[1]
                    if out is None:
                        out = list(evidence)
                    out[i] = e = moved
                    field = own
            if e.weight > 0:
                ok = self._readable.get((field, term))
                if ok is None:
                    ok = self._readable[(field, term)] = readable_term(e, self.record)
                if ok and (field, term) not in said:
                    said.add((field, term))
                    shown.append(e)
        return (evidence if out is None else out), shown


def explain_picks(scorer: Scorer, c: Candidates, batch: Batch, ranked: Sequence[Ranked],
                  picks: Sequence[Sequence[Pick]], rows: Sequence[RowEvidence], max_evidence: int = 5) -> None:
    """Adds ``scorer``'s contribution and summary phrases to every pick it cites, explaining
    them all with one :meth:`Scorer.explain_many` call. ``rows``: one :class:`RowEvidence` per artwork."""
    wanted: list[tuple[int, int]] = []
    cited: list[tuple[Pick, float, int]] = []
    name = scorer.name
    for row, (r, row_picks) in enumerate(zip(ranked, picks)):
        if not row_picks:
            continue
        scores, ranks = r.source_scores[name].tolist(), r.source_ranks[name].tolist()
        for pick in row_picks:
            score, rank = float(scores[pick.position]), int(ranks[pick.position])
            if scorer.cites(score, rank):
                wanted.append((row, pick.tag))
                cited.append((pick, score, rank))
    # Evidence objects may be shared between picks (they are frozen), so are their phrases.
    phrased: dict[tuple[int, ...], list[str]] = {}
    for (row, _), (pick, score, rank), evidence in zip(wanted, cited, scorer.explain_many(batch, c, wanted, max_evidence)):
        evidence, shown = rows[row].sort(evidence)
        pick.contributions.append((name, round(score, 6), rank, evidence))
        key = tuple(map(id, shown))
        phrases = phrased.get(key)
        if phrases is None:
            phrases = phrased[key] = scorer.summarise_evidence(shown)
        pick.phrases += phrases


# the fields a validated construction is given (:func:`arttag.events.trusted`)
_GIVEN_CONTRIBUTION = {"scorer", "score", "rank", "evidence"}
_GIVEN_EXPLANATION = {"summary", "contributions"}
_GIVEN_SUGGESTION = {"tag_id", "label", "group", "score", "confidence", "scorers", "already_assigned", "explanation"}


def assemble(ensemble: BaseEnsemble, metas: Sequence[ArtworkMetadata], ranked: Sequence[Ranked],
             picks: Sequence[Sequence[Pick]]) -> list[list[TagSuggestion]]:
    """The explained picks as :class:`TagSuggestion` events, per artwork.

    Built unvalidated from values this module computed (:func:`arttag.events.trusted`), each
    suggestion with its JSON form (:func:`arttag.events.remember_json`), which is what the
    stream worker writes: equal to the validated construction (tests/test_explain_batch.py)."""
    tags = ensemble.vocabulary.tags
    forms: dict[int, dict] = {}  # evidence JSON forms; an evidence may be cited by several picks
    out: list[list[TagSuggestion]] = []
    for meta, r, row_picks in zip(metas, ranked, picks):
        assigned = {t.id for t in meta.tags}
        suggestions = []
        if not row_picks:
            out.append(suggestions)
            continue
        probs = r.probs.tolist()
        ranks = [(name, v.tolist()) for name, v in r.source_ranks.items()]
        for pick in row_picks:
            tag = tags[pick.tag]
            proposing = [name for name, v in ranks if v[pick.position] > 0]  # Ranked.proposed_by
            contributions, contribution_forms = [], []
            for name, score, rank, evidence in pick.contributions:
                evidence_forms = []
                for e in evidence:
                    if type(e) is TermEvidence:  # the most cited kind: its form is its own fields
                        evidence_forms.append(e.__dict__)
                        continue
                    form = forms.get(id(e))
                    if form is None:
                        form = forms[id(e)] = evidence_json(e)
                    evidence_forms.append(form)
                values = {"scorer": name, "score": score, "rank": rank or None, "evidence": evidence}
                contributions.append(trusted(ScorerContribution, values, _GIVEN_CONTRIBUTION))
                contribution_forms.append({**values, "evidence": evidence_forms})
            summary = summarise(tag.label, pick.confidence, pick.phrases, proposing)
            explanation = trusted(Explanation, {"summary": summary, "contributions": contributions}, _GIVEN_EXPLANATION)
            values = {"tag_id": tag.id, "label": tag.label, "group": tag.group,
                      "score": round(float(probs[pick.position]), 6), "confidence": round(pick.confidence, 6),
                      "scorers": proposing, "already_assigned": tag.id in assigned, "explanation": explanation,
                      "auto_apply": False}
            suggestion = trusted(TagSuggestion, values, _GIVEN_SUGGESTION)
            remember_json(suggestion, {**values, "explanation": {"summary": summary,
                                                                  "contributions": contribution_forms}})
            suggestions.append(suggestion)
        out.append(suggestions)
    return out


def build_suggestions(
    ensemble: BaseEnsemble,
    metas: Sequence[ArtworkMetadata],
    batch: Batch,
    cands: list[Candidates],
    ranked: list[Ranked],
    options: SuggestOptions,
    max_evidence: int = 5,
) -> list[list[TagSuggestion]]:
    """The published tags of every artwork of the batch, explained: :func:`published`, then
    :func:`explain_picks` per scorer (in scorer order, the order of the contributions), then :func:`assemble`."""
    picks = published(metas, ranked, ensemble, options)
    rows = [RowEvidence(meta) for meta in metas]
    for scorer, c in zip(ensemble.scorers, cands):
        explain_picks(scorer, c, batch, ranked, picks, rows, max_evidence)
    return assemble(ensemble, metas, ranked, picks)
