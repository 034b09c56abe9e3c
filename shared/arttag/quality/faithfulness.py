"""Explanations measured: is the cited evidence the real reason for a suggestion's probability?

For each suggestion (artwork, tag, probability ``p``) its explanation cites neighbours (training
artworks, per scorer) and words (per field). Two perturbed copies of the artwork are ranked again:

* **comprehensiveness** ``p - p_without``: the cited neighbours taken out of every neighbour
  scorer's index (the next neighbours move up in their place) and the cited words taken out of
  their fields (the text is embedded again). High: the evidence carried the score.
* **sufficiency** ``p_only / p``: each neighbour scorer sees only the neighbours it cited (with
  the similarities it cited), the text is only the cited words of each field. Near 1: the
  evidence alone explains the score.

A tag the perturbed ranking no longer proposes has probability 0. The neighbour scorers are
steered through :func:`restricted_neighbours`, which wraps their neighbour search for one call;
their code is not changed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from arttag.events import NeighbourEvidence, TagSuggestion, TermEvidence

# Which Batch fields (the model's, arttag.catalogue.text.build_fields) a TermEvidence field names.
# Evidence names the record's own field (arttag.catalogue.record_words): the date is read in the
# byline, the classification in the medium; the TF-IDF block of movements, inscription and
# description is one vocabulary, so a word of one of them is taken out of all three; events
# written before name the merged fields themselves ("other", "movements").
_OTHER_BLOCK = ("movements", "inscription", "description")
_FIELDS = {
    "date": ("artists",),
    "classification": ("medium",),
    "other": ("description", "inscription"),
    "movements": _OTHER_BLOCK,
    "inscription": _OTHER_BLOCK,
    "description": _OTHER_BLOCK,
}
HIST_EDGES = {
    "comprehensiveness": [round(x, 1) for x in np.linspace(-1.0, 1.0, 21)],
    "sufficiency": [round(x, 1) for x in np.linspace(0.0, 2.0, 21)],
}


@dataclass
class Cited:
    """The evidence one suggestion cites: neighbour artwork ids per scorer, words per field."""

    neighbours: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    words: dict[str, set[str]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not any(self.neighbours.values()) and not any(self.words.values())


_WORD = re.compile(r"\w+", re.UNICODE)


def cited_evidence(suggestion: TagSuggestion) -> Cited:
    """What ``suggestion``'s explanation cites (the linear scorer's whole-text embedding share and
    the semantic scorer's tag text are not removable evidence and are left out)."""
    out = Cited()
    for c in suggestion.explanation.contributions:
        for e in c.evidence:
            if isinstance(e, NeighbourEvidence):
                out.neighbours.setdefault(c.scorer, []).append((e.artwork_id, e.similarity))
            elif isinstance(e, TermEvidence):
                words = {w.lower() for w in _WORD.findall(e.term)}
                if words and not e.term.startswith("("):
                    for name in _FIELDS.get(e.field, (e.field,)):
                        out.words.setdefault(name, set()).update(words)
    return out


def strip_words(fields: dict[str, str], words: dict[str, set[str]]) -> dict[str, str]:
    """``fields`` with every whole-word occurrence of the cited words of each field removed."""
    out = {}
    for name, value in fields.items():
        drop = words.get(name)
        if drop:
            value = " ".join(_WORD.sub(lambda m: "" if m.group(0).lower() in drop else m.group(0), value).split())
        if value:
            out[name] = value
    return out


def keep_words(fields: dict[str, str], words: dict[str, set[str]]) -> dict[str, str]:
    """Only the cited words of each field, in their order there; fields without any are dropped."""
    out = {}
    for name, value in fields.items():
        keep = words.get(name)
        if keep:
            kept = [w for w in _WORD.findall(value) if w.lower() in keep]
            if kept:
                out[name] = " ".join(kept)
    return out


@contextmanager
def restricted_neighbours(ensemble: Any, plans: dict[str, list[tuple[str, Any]]]) -> Iterator[None]:
    """For the next rankings, each named neighbour scorer's search follows one plan per batch row:
    ``("without", set of training indices)`` drops those (searching further so as many others
    vote), ``("only", [(training index, similarity), ...])`` returns exactly those."""
    patched = []
    try:
        for scorer in ensemble.scorers:
            if scorer.name not in plans:
                continue
            scorer._neighbours = _planned(scorer, plans[scorer.name])
            patched.append(scorer)
        yield
    finally:
        for scorer in patched:
            del scorer._neighbours


def _planned(scorer: Any, plan: list[tuple[str, Any]]) -> Any:
    original = type(scorer)._neighbours

    def search(batch: Any) -> tuple[np.ndarray, np.ndarray]:
        if len(plan) != len(batch):
            raise ValueError(f"{len(plan)} neighbour plans for a batch of {len(batch)}")
        extra = max([len(arg) for mode, arg in plan if mode == "without"] or [0])
        params = scorer.params
        k = params.neighbours
        scorer.params = params.model_copy(update={"neighbours": k + extra})
        try:
            idx, sims = original(scorer, batch)
        finally:
            scorer.params = params
        rows = []
        for r, (mode, arg) in enumerate(plan):
            if mode == "only":
                rows.append(sorted(arg, key=lambda x: (-x[1], x[0])))
                continue
            found = [(int(i), float(s)) for i, s in zip(idx[r], sims[r]) if s > 0 and int(i) not in arg]
            rows.append(found[:k])
        return scorer._padded(rows)

    return search


def histogram(values: Sequence[float], edges: Sequence[float]) -> dict[str, Any]:
    """Counts per bin (values outside the edges go to the first or last bin)."""
    clipped = np.clip(np.asarray(values, dtype=np.float64), edges[0], edges[-1])
    counts, _ = np.histogram(clipped, bins=np.asarray(edges))
    return {"edges": list(edges), "counts": counts.astype(int).tolist()}


def measure(tagger: Any, metas: Sequence[Any], top: int = 5, batch_size: int = 64,
            progress: bool = False) -> dict[str, Any]:
    """Comprehensiveness and sufficiency of the top ``top`` suggestions of each artwork of ``metas``
    (a :class:`arttag.model.bundle.BundleTagger`); means, medians, histograms and per-suggestion values."""
    from arttag.model.tagger import SuggestOptions
    from arttag.scorers.base import Batch
    from arttag.scorers.knn import KnnVoting

    ensemble = tagger.ensemble
    neighbour_scorers = [s for s in ensemble.scorers if isinstance(s, KnnVoting)]
    index_of = {s.name: {aid: i for i, aid in enumerate(s.ids)} for s in neighbour_scorers}
    suggestions = []
    steps = range(0, len(metas), batch_size)
    if progress:
        from tqdm import tqdm
        steps = tqdm(steps, desc="explaining", unit="batch")
    for start in steps:
        part = metas[start:start + batch_size]
        for meta, sugg in zip(part, tagger.suggest(part, SuggestOptions(limit=top))):
            for s in sugg:
                suggestions.append((meta, s, cited_evidence(s)))
    rows_without: list[tuple[dict[str, str], dict[str, tuple[str, Any]]]] = []
    rows_only: list[tuple[dict[str, str], dict[str, tuple[str, Any]]]] = []
    for meta, s, cited in suggestions:
        fields = Batch.from_metadata([meta]).fields[0]
        everyone = {aid for pairs in cited.neighbours.values() for aid, _ in pairs}
        rows_without.append((strip_words(fields, cited.words),
                             {n: ("without", {index_of[n][a] for a in everyone if a in index_of[n]})
                              for n in index_of}))
        rows_only.append((keep_words(fields, cited.words),
                          {n: ("only", [(index_of[n][a], sim) for a, sim in cited.neighbours.get(n, [])
                                        if a in index_of[n]]) for n in index_of}))
    metas_of = [m for m, _, _ in suggestions]
    p_full = np.array([s.confidence for _, s, _ in suggestions])
    tags = [ensemble.vocabulary.index(s.tag_id) for _, s, _ in suggestions]
    p_without = _rank_rows(tagger, rows_without, metas_of, tags, batch_size, progress, "without cited evidence")
    p_only = _rank_rows(tagger, rows_only, metas_of, tags, batch_size, progress, "only cited evidence")
    comp = p_full - p_without
    suff = np.where(p_full > 0, p_only / np.maximum(p_full, 1e-12), 0.0)
    has = np.array([not c.empty for _, _, c in suggestions])
    return {
        "artworks": len(metas), "suggestions": len(suggestions), "top": top,
        "suggestions_with_removable_evidence": int(has.sum()),
        "comprehensiveness": {"mean": float(comp.mean()) if len(comp) else 0.0,
                              "median": float(np.median(comp)) if len(comp) else 0.0,
                              "histogram": histogram(comp, HIST_EDGES["comprehensiveness"])},
        "sufficiency": {"mean": float(suff.mean()) if len(suff) else 0.0,
                        "median": float(np.median(suff)) if len(suff) else 0.0,
                        "histogram": histogram(suff, HIST_EDGES["sufficiency"])},
        "mean_confidence": float(p_full.mean()) if len(p_full) else 0.0,
        "mean_confidence_without": float(p_without.mean()) if len(p_without) else 0.0,
        "mean_confidence_only": float(p_only.mean()) if len(p_only) else 0.0,
    }


def _rank_rows(tagger: Any, rows: list[tuple[dict[str, str], dict[str, tuple[str, Any]]]], metas: Sequence[Any],
               tags: Sequence[int], batch_size: int, progress: bool, what: str) -> np.ndarray:
    """The ensemble's probability of ``tags[i]`` for row ``i`` (its fields and neighbour plans)."""
    from arttag.scorers.base import Batch

    out = np.zeros(len(rows))
    steps = range(0, len(rows), batch_size)
    if progress:
        from tqdm import tqdm
        steps = tqdm(steps, desc=f"ranking {what}", unit="batch")
    for start in steps:
        part = rows[start:start + batch_size]
        fields = [f for f, _ in part]
        texts = [". ".join(f.values()) for f in fields]
        embeddings = None
        if tagger.ensemble.needs_embeddings:
            embeddings = np.asarray(tagger.encoder.encode(texts), dtype=np.float32)
        batch = Batch(texts, fields, embeddings, [m.accession_number for m in metas[start:start + batch_size]])
        plans = {name: [plan[name] for _, plan in part] for name in (part[0][1] if part else {})}
        with restricted_neighbours(tagger.ensemble, plans):
            ranked, _ = tagger.ensemble.rank(batch)
        for i, r in enumerate(ranked):
            hit = np.flatnonzero(r.tags == tags[start + i])
            out[start + i] = float(r.probs[hit[0]]) if len(hit) else 0.0
    return out
