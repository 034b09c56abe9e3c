"""Training a model bundle from a catalogue, and evaluating one on the dev split.

Steps of :func:`train_bundle`:

1. read the catalogue (bad rows are reported with their line and skipped);
2. the vocabulary: every tag the ``train`` and ``rerank`` artworks name, plus every term of
   an optional thesaurus (``vocabulary=``, CSV or SKOS), with usage counted on the ``train``
   split only (thesaurus terms no training artwork carries have usage 0: the semantic and
   mention scorers can still propose them). Tags only dev artworks carry are left out, so
   evaluation never learns from dev which tags exist;
3. split by :func:`arttag.catalogue.split.split_of`; embed every needed text once
   (an optional ``.npz`` cache keyed by text hash carries embeddings over runs);
4. fit every scorer on the tagged ``train`` artworks;
5. fit the re-ranker on the tagged ``rerank`` artworks (unseen by the scorers), and choose on
   them the auto-apply thresholds (:mod:`arttag.quality.auto_apply`);
6. evaluate on the tagged ``dev`` artworks; write the bundle (:mod:`arttag.model.bundle`).
"""

from __future__ import annotations

import json
import logging
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
from arttag.encoders.cache import cache_file, model_sha256, write_cache_file
from arttag.errors import ArttagError, ModelError
from arttag.events import TagDecisionsChanged
from arttag.model.ensemble import Ensemble, RerankerParams
from arttag.model.recent import recent_split
from arttag.quality.auto_apply import DEFAULT_PRECISIONS, choose_threshold, precision_key, share_above
from arttag.quality.views import NEW_ACQUISITIONS_FROM, split_by_acquisition, view_masks
from arttag.quality.ranking import (
    expected_calibration_error,
    ranking_metrics,
    subset_recall,
)
from arttag.scorers.base import Batch, Corpus, Scorer
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
    auto_apply_precisions: list[float] = Field(
        default_factory=lambda: list(DEFAULT_PRECISIONS),
        description="Target precisions whose confidence thresholds are chosen for unreviewed application")
    auto_apply_folds: int = Field(
        2, ge=0, le=10, description="Folds of the rerank artworks for out-of-fold re-ranker probabilities, "
        "on which the thresholds are chosen (0: choose none)")
    recent_share: float = Field(
        0.1, ge=0.0, lt=1.0, description="The re-ranker also learns from this share of the train and rerank "
        "artworks acquired last, scored by scorers fitted on the train artworks acquired before them "
        "(arttag.model.recent; 0: not at all, nor without acquisition years)")

    @field_validator("auto_apply_precisions")
    @classmethod
    def _precisions_are_probabilities(cls, value: list[float]) -> list[float]:
        if any(not 0.0 < v <= 1.0 for v in value):
            raise ValueError("auto_apply_precisions must lie in (0, 1]")
        return value

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


def build_vocabulary(records: Sequence[CatalogueRecord], train: Sequence[CatalogueRecord],
                     thesaurus: Vocabulary | None = None) -> Vocabulary:
    """Every tag ``records`` name, then every ``thesaurus`` term they do not (in its order), with
    usage counted on ``train``. A term in both keeps the catalogue's label and takes the
    thesaurus's group and area where the catalogue has none."""
    full = Vocabulary.from_records(records)
    usage: dict[str, int] = {}
    for r in train:
        for t in {t.id for t in r.metadata.tags}:
            usage[t] = usage.get(t, 0) + 1
    tags = [replace(t, usage=usage.get(t.id, 0)) for t in full]
    if thesaurus is not None:
        tags = [replace(t, group=t.group or thesaurus.get(t.id).group, area=t.area or thesaurus.get(t.id).area)
                if t.id in thesaurus else t for t in tags]  # type: ignore[union-attr] - in thesaurus
        tags += [replace(t, usage=usage.get(t.id, 0)) for t in thesaurus if t.id not in full]
    return Vocabulary(tags)


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


def held_out_gold(records: Sequence[CatalogueRecord], vocabulary: Vocabulary) -> list[set[int]]:
    """Gold tag indices for evaluation; a tag the vocabulary lacks gets a negative id of its own,
    which no ranking contains: it counts as a miss (and as never seen in training), not as absent."""
    unknown: dict[str, int] = {}
    out = []
    for r in records:
        g = set()
        for t in r.metadata.tags:
            g.add(vocabulary.index(t.id) if t.id in vocabulary else unknown.setdefault(t.id, -1 - len(unknown)))
        out.append(g)
    return out


RARE_MAX_USES = 2
"""A tag used by 1 to this many training artworks counts as rare in evaluation."""


def rare_and_unseen(training: Sequence[CatalogueRecord], vocabulary: Vocabulary, gold: Sequence[set[int]],
                    rare_max: int = RARE_MAX_USES) -> tuple[set[int], set[int]]:
    """Tag indices of the vocabulary used by 1 to ``rare_max`` of the ``training`` artworks (rare),
    and those none of them uses together with the gold tags outside the vocabulary (never seen)."""
    counts: dict[str, int] = {}
    for r in training:
        for tid in {t.id for t in r.metadata.tags}:
            counts[tid] = counts.get(tid, 0) + 1
    usage = np.array([counts.get(t.id, 0) for t in vocabulary])
    rare = set(np.flatnonzero((usage >= 1) & (usage <= rare_max)).tolist())
    unseen = set(np.flatnonzero(usage == 0).tolist()) | {t for g in gold for t in g if t < 0}
    return rare, unseen


def _cache_file(cache_dir: Path, encoder: TextEncoder) -> Path:
    return cache_file(cache_dir, encoder.name)


def encoder_fingerprint(encoder: TextEncoder) -> str | None:
    """sha256 of the model file behind an ONNX encoder (None for encoders without one); see
    :func:`arttag.encoders.cache.model_sha256`."""
    return model_sha256(encoder)


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
    write_cache_file(cached, path, fingerprint)


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
    thesaurus: Vocabulary | None = None,
    rejected: Mapping[str, set[str]] | None = None,
) -> tuple[Ensemble, dict[str, Any]]:
    """Fit the scorers on ``train`` and the re-ranker on ``rerank``; returns the ensemble and a report.
    Every ``thesaurus`` term joins the vocabulary, carried by an artwork or not. ``rejected``
    (artwork id -> tag ids curators rejected) are weighted negatives for the re-ranker."""
    splits = split_records(records)
    if not splits["train"]:
        raise ModelError("the catalogue has no tagged artworks in the train split")
    vocab = build_vocabulary([*splits["train"], *splits["rerank"]], splits["train"], thesaurus)
    needs_embeddings = any(get_scorer_class(name).needs_embeddings for name in params.scorers)
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
    scorers = fit_scorers(vocab, corpus, params)
    timings["scorers_s"] = time.perf_counter() - t0

    ensemble = Ensemble(vocab, scorers)
    rerank = splits["rerank"]
    report: dict[str, Any] = {"artworks": {k: len(v) for k, v in splits.items()}}
    recent = None
    if rerank:
        t0 = time.perf_counter()
        recent = recent_lesson(splits, emb, tag_emb, params, thesaurus, report)
        timings["recent_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if rerank:
        batch = make_batch(rerank, emb["rerank"])
        log.info("fitting the re-ranker on %d rerank artworks", len(rerank))
        negatives = None if rejected is None else [
            {vocab.index(t) for t in rejected.get(r.artwork_id, ()) if t in vocab} for r in rerank]
        report["reranker"] = ensemble.fit_reranker(batch, gold_sets(rerank, vocab), params.reranker, progress,
                                                   negatives=negatives, extra=recent)
        if params.auto_apply_folds >= 2 and report["reranker"].get("trained"):
            t1 = time.perf_counter()
            report["auto_apply"] = auto_apply_thresholds(ensemble, batch, gold_sets(rerank, vocab), params)
            timings["auto_apply_s"] = time.perf_counter() - t1
    else:
        log.warning("no tagged artworks in the rerank split; the ensemble averages scores")
        report["reranker"] = {"trained": False}
    timings["reranker_s"] = time.perf_counter() - t0 - timings.get("auto_apply_s", 0.0)
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


def fit_scorers(vocab: Vocabulary, corpus: Corpus, params: TrainParams) -> list[Scorer]:
    """Every scorer of ``params``, in ensemble order, fitted on ``corpus``."""
    scorers = []
    for name in params.scorers:
        scorer = get_scorer_class(name)(vocab, params.scorers[name])
        log.info("fitting scorer %s on %d artworks", name, len(corpus))
        scorer.fit(corpus)
        scorers.append(scorer)
    return scorers


def recent_lesson(splits: Mapping[str, Sequence[CatalogueRecord]], emb: Mapping[str, np.ndarray | None],
                  tag_emb: np.ndarray | None, params: TrainParams, thesaurus: Vocabulary | None,
                  report: dict[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """The re-ranker's features and labels for the recently acquired artworks, from scorers fitted
    on the train artworks acquired before them (:mod:`arttag.model.recent`); None when there is
    no such lesson. ``report["recent"]`` says what was used."""
    split = recent_split(splits["train"], splits["rerank"], params.recent_share)
    if split is None:
        if params.recent_share > 0:
            log.info("no recent-acquisitions lesson for the re-ranker: no acquisition years, or too few artworks on either side")
        return None
    # The same tags in the same order as the ensemble's vocabulary; usage as the earlier artworks had it.
    vocab = build_vocabulary([*splits["train"], *splits["rerank"]], split.earlier, thesaurus)
    vectors = {id(r): v for s in ("train", "rerank") if emb[s] is not None for r, v in zip(splits[s], emb[s])}

    def embeddings(records: Sequence[CatalogueRecord]) -> np.ndarray | None:
        return np.stack([vectors[id(r)] for r in records]) if vectors else None

    log.info("re-ranker lesson on recent acquisitions: %d artworks acquired from %d, scored by scorers "
             "fitted on %d earlier ones", len(split.recent), split.from_year, len(split.earlier))
    corpus = make_corpus(split.earlier, vocab, embeddings(split.earlier), tag_emb)
    earlier = Ensemble(vocab, fit_scorers(vocab, corpus, params))
    batch = make_batch(split.recent, embeddings(split.recent))
    feats = earlier.features(batch, earlier.gather(batch))
    y = feats.pairs.marks(gold_sets(split.recent, vocab)).astype(np.int8)
    report["recent"] = {"from_year": split.from_year, "artworks": len(split.recent),
                        "earlier_artworks": len(split.earlier), "pairs": int(len(y)), "positives": int(y.sum())}
    return feats.matrix, y


def out_of_fold_probabilities(ensemble: Ensemble, batch: Batch, gold: Sequence[set[int]],
                              folds: int = 2, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Re-ranker probabilities of every candidate of ``batch``, each from a copy of the ensemble's
    re-ranker (same settings) fitted on the other folds' artworks, and whether each is right.

    The re-ranker's probabilities on its own training artworks are optimistic (it has seen their
    answers); thresholds chosen on them would miss their precision on new artworks.
    """
    from sklearn.base import clone
    from threadpoolctl import threadpool_limits

    if ensemble.reranker is None:
        raise ModelError("out-of-fold probabilities need a trained re-ranker")
    feats = ensemble.features(batch, ensemble.gather(batch))
    x, y, which = feats.matrix, feats.pairs.marks(gold).astype(np.int8), feats.pairs.rows % folds
    probs = np.zeros(len(y))
    for k in range(folds):
        held = which == k
        model = clone(ensemble.reranker)
        with threadpool_limits(limits=threads):
            model.fit(x[~held], y[~held])
            probs[held] = model.predict_proba(x[held])[:, 1]
    return probs, y.astype(bool)


def auto_apply_thresholds(ensemble: Ensemble, batch: Batch, gold: Sequence[set[int]],
                          params: TrainParams) -> dict[str, Any]:
    """The manifest's ``training.auto_apply``: per target precision, the lowest confidence at which
    the out-of-fold suggestions of the rerank artworks reach it, with the precision and the share
    of true tags recovered there."""
    probs, correct = out_of_fold_probabilities(ensemble, batch, gold, params.auto_apply_folds,
                                               params.reranker.threads)
    total = sum(len(g) for g in gold)
    thresholds, reached = {}, {}
    for precision in params.auto_apply_precisions:
        key = precision_key(precision)
        thresholds[key] = choose_threshold(probs, correct, precision)
        reached[key] = share_above(probs, correct, total, thresholds[key])
    return {"thresholds": thresholds, "on_rerank": reached,
            "chosen_on": f"rerank artworks, out-of-fold re-ranker probabilities ({params.auto_apply_folds} folds)"}


def train_bundle(
    catalogue: str | Path,
    out_dir: str | Path,
    encoder: TextEncoder,
    params: TrainParams | dict[str, Any] | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = False,
    keep: int = 3,
    vocabulary: str | Path | None = None,
    decisions: Mapping[str, TagDecisionsChanged] | None = None,
    decisions_source: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train on a catalogue file, write a new bundle version and point ``out_dir`` at it; returns
    its manifest. ``keep`` versions stay behind the pointer (:func:`arttag.model.bundle.write_bundle`).
    ``vocabulary``: a thesaurus file (CSV or SKOS, :func:`arttag.catalogue.vocabulary.load_vocabulary`)
    whose every term becomes suggestable.

    ``decisions`` (artwork id -> its curation decisions, :mod:`arttag.curation.labels`) add
    accepted tags as labels and rejected ones as re-ranker negatives; the manifest's
    ``training.decisions`` says how many of each were used, with ``decisions_source``.

    Example (a few seconds on the bundled sample)::

        manifest = train_bundle(SAMPLE, tmp_path / "bundle", HashingEncoder())
        tagger = open_tagger(tmp_path / "bundle")  # the bundle names its hashing encoder
    """
    from arttag.model.bundle import write_bundle

    params = params if isinstance(params, TrainParams) else TrainParams.model_validate(params or {})
    catalogue = Path(catalogue)
    records, cat_report = load_catalogue(catalogue)
    if cat_report.bad_rows:
        log.warning("%s: %d bad row(s) skipped", catalogue, len(cat_report.bad_rows))
    thesaurus = None
    if vocabulary is not None:
        from arttag.catalogue.vocabulary import load_vocabulary

        thesaurus = load_vocabulary(Path(vocabulary))
        log.info("thesaurus %s: %d terms", vocabulary, len(thesaurus))
    rejected, used = None, None
    if decisions is not None:
        from arttag.curation.labels import apply_decisions

        records, rejected, used = apply_decisions(records, decisions)
    ensemble, report = train_ensemble(records, encoder, params, Path(cache_dir) if cache_dir else None, progress,
                                      thesaurus=thesaurus, rejected=rejected)
    if used is not None:
        report["decisions"] = {**(decisions_source or {}), **used,
                               "rejected_negatives": report["reranker"].get("rejected_negatives", 0)}
    if thesaurus is not None:
        carried = {t.id for r in records for t in r.metadata.tags}
        report["thesaurus"] = {"path": str(vocabulary), "sha256": file_sha256(Path(vocabulary)),
                               "terms": len(thesaurus),
                               "terms_no_artwork_carries": sum(t.id not in carried for t in thesaurus)}
    report["vocabulary_size"] = len(ensemble.vocabulary)
    metrics = None
    if params.evaluate:
        metrics = evaluate_ensemble(ensemble, encoder, records, params.batch_size, cache_dir, progress,
                                    fitted_on=report["scorers_fitted_on"],
                                    auto_apply=(report.get("auto_apply") or {}).get("thresholds"))
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


SPLITS = ("dev", "all", "new-acquisitions")
"""What :func:`evaluate_ensemble` measures on (:mod:`arttag.quality.views`)."""


def evaluation_records(
    records: Sequence[CatalogueRecord], split: str, fitted_on: Sequence[str] = ("train", "rerank"),
    acquired_from: int = NEW_ACQUISITIONS_FROM,
) -> tuple[list[CatalogueRecord], list[CatalogueRecord], dict[str, list[CatalogueRecord]]]:
    """The tagged artworks an evaluation ``split`` (:data:`SPLITS`, as :func:`evaluate_ensemble`
    reads it) holds out, those the bundle learnt from (its ``fitted_on`` splits), and the splits
    of the pool both come from (the whole catalogue, or the artworks acquired before
    ``acquired_from`` for ``"new-acquisitions"``)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    tagged = [r for r in records if r.metadata.tags]
    pool = tagged
    if split == "new-acquisitions":
        pool, held_out = split_by_acquisition(tagged, acquired_from)
    splits = split_records(pool)
    if split == "dev":
        held_out = splits["dev"]
    elif split == "all":
        held_out = [r for s in ("train", "rerank", "dev") for r in splits[s]]
    return held_out, [r for s in fitted_on for r in splits[s]], splits


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
    acquired_from: int = NEW_ACQUISITIONS_FROM,
    auto_apply: dict[str, float | None] | None = None,
) -> dict[str, Any]:
    """Every metric of :mod:`arttag.quality.ranking` on held-out tagged artworks, per scorer and for the
    ensemble, on all of them and on those whose text appears nowhere in training.

    ``split``: ``"dev"``, the random view (the dev split; training = the ``fitted_on`` splits);
    ``"new-acquisitions"``, the artworks acquired from ``acquired_from`` on, for a bundle trained on
    the artworks acquired before (training = those of them in the ``fitted_on`` splits); ``"all"``
    evaluates every tagged artwork instead (a catalogue the bundle was not trained on; on its own
    training catalogue the figures are optimistic; no isolation views). In the first two,
    ``views`` adds the isolated artworks and those by an artist new to training
    (:func:`arttag.quality.views.view_masks`), each with its novel-text part.

    Gold tags the bundle's vocabulary lacks count as missed and as never seen in training.
    ``auto_apply`` (precision key -> threshold, from the manifest) adds the share of true tags
    recovered at or above each threshold and the precision reached (``auto_apply``).
    ``collect``, when given, receives per artwork the ensemble's top 10 (``rankings``), their
    confidences (``confidences``), whether each is right (``correct``) and the gold tag indices
    (``gold``), for plots."""
    dev, training, splits = evaluation_records(records, split, fitted_on, acquired_from)
    vocab = ensemble.vocabulary
    seen_texts = {build_text(r.metadata) for s in ("train", "rerank") for r in splits[s]}
    texts = [build_text(r.metadata) for r in dev]
    novel = [t not in seen_texts for t in texts]
    gold = held_out_gold(dev, vocab)
    # "Seen in training" = used by an artwork the scorers were fitted on.
    rare, unseen = rare_and_unseen(training, vocab, gold)
    embeddings = None
    if ensemble.needs_embeddings and dev:
        if encoder is None:
            raise ModelError("this ensemble needs an encoder to evaluate")
        embeddings = embed_texts(encoder, texts, Path(cache_dir) if cache_dir else None, progress)
    names = [s.name for s in ensemble.scorers]
    rankings: dict[str, list[list[int]]] = {n: [] for n in [*names, "ensemble"]}
    conf, correct = [], []
    all_conf: list[float] = []
    all_correct: list[bool] = []
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
            if auto_apply:
                all_conf += r.probs.tolist()
                all_correct += [int(t) in g for t in r.tags]
        for name, c in zip(names, cands):
            rankings[name] += [t[:10].tolist() for t in c.tags]
    if collect is not None:
        collect.update(rankings=rankings["ensemble"], confidences=conf, correct=correct, gold=gold)
    result: dict[str, Any] = {
        "split": split,
        "scorers_fitted_on": list(fitted_on),
        "dev_artworks": len(dev),
        "training_artworks": len(training),
        "novel_text_artworks": int(sum(novel)),
        "candidate_recall": candidate_hits / max(1, sum(len(g) for g in gold)),
        "ece": expected_calibration_error([c for cs in conf for c in cs], [y for ys in correct for y in ys]),
        "ensemble": _all_metrics(rankings["ensemble"], gold, rare, unseen),
        "scorers": {n: _all_metrics(rankings[n], gold, rare, unseen) for n in names},
    }
    if split == "new-acquisitions":
        result["acquired_from"] = acquired_from
    result["ensemble"]["ece"] = result["ece"]

    def part(flags: Sequence[bool], with_scorers: bool = True) -> dict[str, Any]:
        sel = [i for i, flag in enumerate(flags) if flag]
        pick = lambda xs: [xs[i] for i in sel]  # noqa: E731
        out: dict[str, Any] = {"artworks": len(sel), "ensemble": _all_metrics(pick(rankings["ensemble"]), pick(gold),
                                                                              rare, unseen)}
        if with_scorers:
            out["scorers"] = {n: _all_metrics(pick(rankings[n]), pick(gold), rare, unseen) for n in names}
        out["ensemble"]["ece"] = expected_calibration_error(
            [c for i in sel for c in conf[i]], [y for i in sel for y in correct[i]])
        return out

    result["novel_text"] = part(novel)
    if split != "all":
        result["views"] = {}
        for view, flags in view_masks([r.metadata for r in dev], [r.metadata for r in training]).items():
            result["views"][view] = part(flags)
            result["views"][view]["novel_text"] = part([f and n for f, n in zip(flags, novel)], with_scorers=False)
    if auto_apply:
        total = sum(len(g) for g in gold)
        result["auto_apply"] = {k: share_above(all_conf, all_correct, total, t) for k, t in auto_apply.items()}
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
    for view, figures in (result.get("views") or {}).items():
        result["headline"][f"{view}_artworks"] = figures["artworks"]
        result["headline"][f"{view}_f1_at_5"] = figures["ensemble"]["f1_at_5"]
        result["headline"][f"{view}_ndcg_at_10"] = figures["ensemble"]["ndcg_at_10"]
    if "0.95" in (result.get("auto_apply") or {}):
        result["headline"]["auto_apply_recall_at_p95"] = result["auto_apply"]["0.95"]["recall"]
        result["headline"]["auto_apply_precision_at_p95"] = result["auto_apply"]["0.95"]["precision"]
    return result
