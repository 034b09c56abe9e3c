"""Training a model bundle from a catalogue, and evaluating one on the dev split.

Steps of :func:`train_bundle`:

1. read the catalogue (bad rows are reported with their line and skipped);
2. the vocabulary: every tag the catalogue names, with its usage counted on
   the ``train`` split only (tags used only in ``rerank``/``dev`` stay in the
   vocabulary with usage 0: the semantic scorer can still propose them);
3. split by :func:`arttag.catalogue.split.split_of`; embed every needed text once
   (an optional ``.npz`` cache keyed by text hash carries embeddings over runs);
4. fit every scorer on the tagged ``train`` artworks;
5. fit the re-ranker on the tagged ``rerank`` artworks (unseen by the scorers);
6. evaluate on the tagged ``dev`` artworks; write the bundle (:mod:`arttag.model.bundle`).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field, field_validator

from arttag.catalogue.records import CatalogueRecord, CatalogueReport, load_catalogue
from arttag.catalogue.split import split_of
from arttag.catalogue.text import build_text
from arttag.catalogue.vocabulary import Vocabulary
from arttag.checksums import file_sha256
from arttag.encoders.base import TextEncoder
from arttag.errors import ArttagError, ModelError
from arttag.events import TagDecisionsChanged
from arttag.model.ensemble import Ensemble, RerankerParams
from arttag.quality.ranking import (
    expected_calibration_error,
    ranking_metrics,
    subset_recall,
)
from arttag.scorers.base import Batch, Corpus
from arttag.scorers.registry import get_scorer_class

log = logging.getLogger(__name__)


def _default_scorers() -> dict[str, dict[str, Any]]:
    # Chosen on the Tate dev split with the int8 MPNet (README, "Training and evaluation").
    return {"knn": {"power": 6.0, "neighbours": 50}, "tfidf": {}, "tfidf_artist": {}, "linear": {}, "semantic": {},
            "group": {}, "artist": {}, "accession": {}, "mention": {}}


class TrainParams(BaseModel):
    """Everything that shapes a bundle besides the data and the encoder."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scorers: dict[str, dict[str, Any]] = Field(default_factory=_default_scorers,
                                               description="Scorer name -> its Params, in ensemble order")
    reranker: RerankerParams = Field(default_factory=RerankerParams)
    version_prefix: str = Field("tate", pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    model_version: str | None = Field(None, description="Overrides the derived model version")
    evaluate: bool = Field(True, description="Evaluate on the dev split and store the figures in the manifest")
    refit_on_rerank: bool = Field(
        True, description="After the re-ranker has learned, refit the scorers on train + rerank (more neighbours)")
    batch_size: int = Field(512, ge=1, description="Artworks scored at a time")

    @field_validator("scorers")
    @classmethod
    def _scorer_params_are_valid(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        # Validate every scorer's Params once, at start-up, not after an hour of embedding.
        if not value:
            raise ValueError("at least one scorer is needed")
        for name, params in value.items():
            try:
                scorer_cls = get_scorer_class(name)
            except ArttagError as exc:
                raise ValueError(str(exc)) from None
            scorer_cls.Params.model_validate(params)
        return value


# -- data -----------------------------------------------------------------------


def split_records(records: Sequence[CatalogueRecord]) -> dict[str, list[CatalogueRecord]]:
    """Tagged artworks by split (untagged ones teach nothing and cannot be evaluated)."""
    out: dict[str, list[CatalogueRecord]] = {"train": [], "rerank": [], "dev": []}
    for r in records:
        if r.metadata.tags:
            out[split_of(r.artwork_id)].append(r)
    return out


def build_vocabulary(records: Sequence[CatalogueRecord], train: Sequence[CatalogueRecord]) -> Vocabulary:
    full = Vocabulary.from_records(records)
    usage: dict[str, int] = {}
    for r in train:
        for t in {t.id for t in r.metadata.tags}:
            usage[t] = usage.get(t, 0) + 1
    return Vocabulary(replace(t, usage=usage.get(t.id, 0)) for t in full)


def label_matrix(records: Sequence[CatalogueRecord], vocabulary: Vocabulary) -> sp.csr_matrix:
    rows, cols = [], []
    for i, r in enumerate(records):
        for tid in {t.id for t in r.metadata.tags}:
            if tid in vocabulary:
                rows.append(i)
                cols.append(vocabulary.index(tid))
    return sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                         shape=(len(records), len(vocabulary)))


def gold_sets(records: Sequence[CatalogueRecord], vocabulary: Vocabulary) -> list[set[int]]:
    return [{vocabulary.index(t.id) for t in r.metadata.tags if t.id in vocabulary} for r in records]


def _cache_file(cache_dir: Path, encoder: TextEncoder) -> Path:
    return cache_dir / (re.sub(r"[^A-Za-z0-9_.-]+", "_", encoder.name) + ".npz")


def encoder_fingerprint(encoder: TextEncoder) -> str | None:
    """sha256 of the model file behind an ONNX encoder (None for encoders without one).

    The encoder's name says which model and variant, not which export of it; a
    re-export (another quantisation recipe) changes every vector, so caches are
    keyed by this too.
    """
    inner = getattr(encoder, "inner", encoder)
    manifest, variant = getattr(inner, "manifest", None), getattr(inner, "variant", None)
    if manifest is None or not variant:
        return None
    try:
        return str(manifest.variant(variant).sha256)
    except (ArttagError, AttributeError):
        return None


def _cache_matches(path: Path, fingerprint: str | None) -> bool:
    if fingerprint is None:
        return True
    try:
        return json.loads(path.with_name(path.name + ".json").read_text()).get("model_sha256") == fingerprint
    except (OSError, ValueError):
        return False  # a cache of unknown provenance for a fingerprinted model: do not trust it


def embed_texts(encoder: TextEncoder, texts: Sequence[str], cache_dir: Path | None = None,
                progress: bool = False, chunk: int = 256, save_every: int = 4096) -> np.ndarray:
    """Embeddings of ``texts`` (each distinct text encoded once), through an optional on-disk cache."""
    from arttag.encoders.cache import CachedEncoder

    unique = list(dict.fromkeys(texts))
    path = _cache_file(cache_dir, encoder) if cache_dir else None
    known = 0
    fingerprint = encoder_fingerprint(encoder)
    if path and path.exists() and not _cache_matches(path, fingerprint):
        log.warning("embedding cache %s was written by another export of %s; not used", path, encoder.name)
    elif path and path.exists():
        try:
            with np.load(path, allow_pickle=False) as data:
                known = len(data["keys"])
        except (OSError, KeyError, ValueError):
            known = 0
    # Room for every cached and every new text: an LRU smaller than that would evict
    # texts we need and then save a truncated cache file.
    cached = CachedEncoder(encoder, max_size=known + len(unique) + 1024)
    if path and known:
        try:
            cached.load(path)
        except ModelError as exc:
            log.warning("ignoring embedding cache: %s", exc)
    vectors: dict[str, np.ndarray] = {}
    steps = range(0, len(unique), chunk)
    if progress:
        from tqdm import tqdm
        steps = tqdm(steps, desc=f"embedding ({encoder.name})", unit="chunk")
    since_save = 0
    for start in steps:
        part = unique[start:start + chunk]
        misses = cached.misses
        for t, v in zip(part, cached.encode(part)):
            vectors[t] = v
        since_save += cached.misses - misses
        if path and since_save >= save_every:
            _save_cache(cached, path, fingerprint)
            since_save = 0
    if path and since_save:
        _save_cache(cached, path, fingerprint)
    dim = encoder.dim
    return np.stack([vectors[t] for t in texts]).astype(np.float32) if texts else np.zeros((0, dim), np.float32)


def _save_cache(cached: Any, path: Path, fingerprint: str | None) -> None:
    cached.save(path)
    path.with_name(path.name + ".json").write_text(
        json.dumps({"encoder": cached.name, "model_sha256": fingerprint}) + "\n")


def make_batch(records: Sequence[CatalogueRecord], embeddings: np.ndarray | None) -> Batch:
    return Batch.from_metadata([r.metadata for r in records], embeddings)


def make_corpus(records: Sequence[CatalogueRecord], vocabulary: Vocabulary, embeddings: np.ndarray | None,
                tag_embeddings: np.ndarray | None) -> Corpus:
    b = make_batch(records, embeddings)
    return Corpus(b.texts, b.fields, embeddings, b.accession_numbers, ids=[r.artwork_id for r in records],
                  titles=[r.metadata.title for r in records], labels=label_matrix(records, vocabulary),
                  tag_embeddings=tag_embeddings)


# -- training ---------------------------------------------------------------


def train_ensemble(
    records: Sequence[CatalogueRecord],
    encoder: TextEncoder,
    params: TrainParams,
    cache_dir: Path | None = None,
    progress: bool = False,
    rejected: Mapping[str, set[str]] | None = None,
) -> tuple[Ensemble, dict[str, Any]]:
    """Fit the scorers on ``train`` and the re-ranker on ``rerank``; returns the ensemble and a report.
    ``rejected`` (artwork id -> tag ids curators rejected) are weighted negatives for the re-ranker."""
    splits = split_records(records)
    if not splits["train"]:
        raise ModelError("the catalogue has no tagged artworks in the train split")
    vocab = build_vocabulary(records, splits["train"])
    scorer_classes = [(name, get_scorer_class(name)) for name in params.scorers]
    needs_embeddings = any(cls.needs_embeddings for _, cls in scorer_classes)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    emb: dict[str, np.ndarray | None] = {"train": None, "rerank": None}
    tag_emb = None
    if needs_embeddings:
        texts = {s: [build_text(r.metadata) for r in splits[s]] for s in ("train", "rerank")}
        everything = texts["train"] + texts["rerank"] + [t.text for t in vocab]
        allv = embed_texts(encoder, everything, cache_dir, progress)
        n1, n2 = len(texts["train"]), len(texts["train"]) + len(texts["rerank"])
        emb = {"train": allv[:n1], "rerank": allv[n1:n2]}
        tag_emb = allv[n2:]
    timings["embed_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    corpus = make_corpus(splits["train"], vocab, emb["train"], tag_emb)
    scorers = []
    for name, cls in scorer_classes:
        scorer = cls(vocab, params.scorers[name])
        log.info("fitting scorer %s on %d artworks", name, len(corpus))
        scorer.fit(corpus)
        scorers.append(scorer)
    timings["scorers_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ensemble = Ensemble(vocab, scorers)
    rerank = splits["rerank"]
    report: dict[str, Any] = {"artworks": {k: len(v) for k, v in splits.items()}}
    if rerank:
        batch = make_batch(rerank, emb["rerank"])
        log.info("fitting the re-ranker on %d rerank artworks", len(rerank))
        negatives = None if rejected is None else [
            {vocab.index(t) for t in rejected.get(r.artwork_id, ()) if t in vocab} for r in rerank]
        report["reranker"] = ensemble.fit_reranker(batch, gold_sets(rerank, vocab), params.reranker, progress,
                                                   negatives=negatives)
    else:
        log.warning("no tagged artworks in the rerank split; the ensemble averages scores")
        report["reranker"] = {"trained": False}
    timings["reranker_s"] = time.perf_counter() - t0
    report["scorers_fitted_on"] = ["train"]
    if params.refit_on_rerank and rerank:
        t0 = time.perf_counter()
        both = list(splits["train"]) + list(rerank)
        both_emb = None if emb["train"] is None else np.vstack([emb["train"], emb["rerank"]])
        corpus = make_corpus(both, vocab, both_emb, tag_emb)
        for scorer in scorers:
            scorer.fit(corpus)
        report["scorers_fitted_on"] = ["train", "rerank"]
        timings["refit_s"] = time.perf_counter() - t0
    report["timings"] = timings
    return ensemble, report


def train_bundle(
    catalogue: str | Path,
    out_dir: str | Path,
    encoder: TextEncoder,
    params: TrainParams | dict[str, Any] | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = False,
    keep: int = 3,
    decisions: Mapping[str, TagDecisionsChanged] | None = None,
    decisions_source: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train on a catalogue file, write a new bundle version and point ``out_dir`` at it; returns
    its manifest. ``keep`` versions stay behind the pointer (:func:`arttag.model.bundle.write_bundle`).

    ``decisions`` (artwork id -> its curation decisions, :mod:`arttag.curation.labels`) add
    accepted tags as labels and rejected ones as re-ranker negatives; the manifest's
    ``training.decisions`` says how many of each were used, with ``decisions_source``.

    Example (a few seconds on the bundled sample)::

        manifest = train_bundle(SAMPLE, tmp_path / "bundle", HashingEncoder())
        tagger = load_tagger(tmp_path / "bundle", HashingEncoder())
    """
    from arttag.model.bundle import write_bundle

    params = params if isinstance(params, TrainParams) else TrainParams.model_validate(params or {})
    catalogue = Path(catalogue)
    records, cat_report = load_catalogue(catalogue)
    if cat_report.bad_rows:
        log.warning("%s: %d bad row(s) skipped", catalogue, len(cat_report.bad_rows))
    rejected, used = None, None
    if decisions is not None:
        from arttag.curation.labels import apply_decisions

        records, rejected, used = apply_decisions(records, decisions)
    ensemble, report = train_ensemble(records, encoder, params, Path(cache_dir) if cache_dir else None, progress,
                                      rejected=rejected)
    if used is not None:
        report["decisions"] = {**(decisions_source or {}), **used,
                               "rejected_negatives": report["reranker"].get("rejected_negatives", 0)}
    metrics = None
    if params.evaluate:
        metrics = evaluate_ensemble(ensemble, encoder, records, params.batch_size, cache_dir, progress,
                                    fitted_on=report["scorers_fitted_on"])
    return write_bundle(
        Path(out_dir), ensemble, encoder, params,
        data={"path": str(catalogue), "sha256": file_sha256(catalogue), **_catalogue_summary(cat_report)},
        report=report, metrics=metrics, keep=keep,
    )


def _catalogue_summary(report: CatalogueReport) -> dict[str, Any]:
    return {
        "rows_read": report.rows_read,
        "bad_rows": len(report.bad_rows),
        "bad_row_examples": [{"line": b.line, "error": b.error[:200]} for b in report.bad_rows[:10]],
    }


# -- evaluation -------------------------------------------------------------


def _all_metrics(rankings: list[list[int]], gold: list[set[int]], rare: set[int], unseen: set[int]) -> dict[str, Any]:
    m: dict[str, Any] = ranking_metrics(rankings, gold)
    r = subset_recall(rankings, gold, rare, 10)
    u = subset_recall(rankings, gold, unseen, 10)
    m["rare_recall_at_10"], m["rare_pairs"] = r["recall"], r["pairs"]
    m["unseen_recall_at_10"], m["unseen_pairs"] = u["recall"], u["pairs"]
    return m


def evaluate_ensemble(
    ensemble: Ensemble,
    encoder: TextEncoder | None,
    records: Sequence[CatalogueRecord],
    batch_size: int = 512,
    cache_dir: str | Path | None = None,
    progress: bool = False,
    fitted_on: Sequence[str] = ("train", "rerank"),
    split: str = "dev",
    collect: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every metric of :mod:`arttag.quality.ranking` on the tagged dev artworks, per scorer and for the
    ensemble, on all of them and on those whose text appears nowhere in train or rerank.

    ``split="all"`` evaluates every tagged artwork instead (a catalogue the bundle was not
    trained on; on its own training catalogue the figures are optimistic). ``collect``, when
    given, receives per artwork the ensemble's top 10 (``rankings``), their confidences
    (``confidences``), whether each is right (``correct``) and the gold tag indices
    (``gold``), for plots."""
    if split not in ("dev", "all"):
        raise ValueError(f"split must be 'dev' or 'all', not {split!r}")
    splits = split_records(records)
    dev = splits["dev"] if split == "dev" else [r for s in ("train", "rerank", "dev") for r in splits[s]]
    vocab = ensemble.vocabulary
    seen_texts = {build_text(r.metadata) for s in ("train", "rerank") for r in splits[s]}
    texts = [build_text(r.metadata) for r in dev]
    novel = [t not in seen_texts for t in texts]
    gold = gold_sets(dev, vocab)
    # "Seen in training" = used by an artwork the scorers were fitted on.
    counts: dict[str, int] = {}
    for s in fitted_on:
        for r in splits[s]:
            for tid in {t.id for t in r.metadata.tags}:
                counts[tid] = counts.get(tid, 0) + 1
    usage = np.array([counts.get(t.id, 0) for t in vocab])
    rare = set(np.flatnonzero((usage >= 1) & (usage <= 2)).tolist())
    unseen = set(np.flatnonzero(usage == 0).tolist())
    embeddings = None
    if ensemble.needs_embeddings and dev:
        if encoder is None:
            raise ModelError("this ensemble needs an encoder to evaluate")
        embeddings = embed_texts(encoder, texts, Path(cache_dir) if cache_dir else None, progress)
    names = [s.name for s in ensemble.scorers]
    rankings: dict[str, list[list[int]]] = {n: [] for n in [*names, "ensemble"]}
    conf, correct = [], []
    candidate_hits = 0
    steps = range(0, len(dev), batch_size)
    if progress:
        from tqdm import tqdm
        steps = tqdm(steps, desc="evaluating", unit="batch")
    for start in steps:
        part = dev[start:start + batch_size]
        batch = make_batch(part, None if embeddings is None else embeddings[start:start + batch_size])
        ranked, cands = ensemble.rank(batch)
        for i, r in enumerate(ranked):
            g = gold[start + i]
            rankings["ensemble"].append(r.tags[:10].tolist())
            conf.append(r.probs[:10].tolist())
            correct.append([int(t) in g for t in r.tags[:10]])
            candidate_hits += len(g & set(r.tags.tolist()))
        for name, c in zip(names, cands):
            rankings[name] += [t[:10].tolist() for t in c.tags]
    if collect is not None:
        collect.update(rankings=rankings["ensemble"], confidences=conf, correct=correct, gold=gold)
    result: dict[str, Any] = {
        "split": split,
        "scorers_fitted_on": list(fitted_on),
        "dev_artworks": len(dev),
        "novel_text_artworks": int(sum(novel)),
        "candidate_recall": candidate_hits / max(1, sum(len(g) for g in gold)),
        "ece": expected_calibration_error([c for cs in conf for c in cs], [y for ys in correct for y in ys]),
        "ensemble": _all_metrics(rankings["ensemble"], gold, rare, unseen),
        "scorers": {n: _all_metrics(rankings[n], gold, rare, unseen) for n in names},
    }
    result["ensemble"]["ece"] = result["ece"]
    sel = [i for i, flag in enumerate(novel) if flag]
    pick = lambda xs: [xs[i] for i in sel]  # noqa: E731
    result["novel_text"] = {
        "ensemble": _all_metrics(pick(rankings["ensemble"]), pick(gold), rare, unseen),
        "scorers": {n: _all_metrics(pick(rankings[n]), pick(gold), rare, unseen) for n in names},
    }
    result["novel_text"]["ensemble"]["ece"] = expected_calibration_error(
        [c for i in sel for c in conf[i]], [y for i in sel for y in correct[i]])
    best = max(names, key=lambda n: result["scorers"][n]["f1_at_5"])
    result["headline"] = {
        "f1_at_5": result["ensemble"]["f1_at_5"],
        "ndcg_at_10": result["ensemble"]["ndcg_at_10"],
        "p_at_1": result["ensemble"]["p_at_1"],
        "unseen_tag_recall_at_10": result["ensemble"]["unseen_recall_at_10"],
        "rare_tag_recall_at_10": result["ensemble"]["rare_recall_at_10"],
        "ece": result["ece"],
        "best_single_scorer": best,
        "best_single_scorer_f1_at_5": result["scorers"][best]["f1_at_5"],
        "best_single_scorer_ndcg_at_10": result["scorers"][best]["ndcg_at_10"],
        "novel_text_f1_at_5": result["novel_text"]["ensemble"]["f1_at_5"],
        "novel_text_ndcg_at_10": result["novel_text"]["ensemble"]["ndcg_at_10"],
    }
    return result
