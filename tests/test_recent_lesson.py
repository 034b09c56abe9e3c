"""The re-ranker's lesson on recent acquisitions (arttag.model.recent, training.recent_lesson)."""

from __future__ import annotations

import dataclasses

import numpy as np
from arttag.catalogue.records import CatalogueRecord, load_catalogue
from arttag.encoders import HashingEncoder
from arttag.events import ArtworkMetadata
from arttag.model.bundle import read_manifest
from arttag.model.ensemble import CATEGORICAL
from arttag.model.recent import recent_from_year, recent_split
from arttag.model.training import TrainParams, split_records, train_ensemble


def _record(i: int, year: int | None) -> CatalogueRecord:
    meta = ArtworkMetadata(title=f"Work {i}", acquisition_year=year, tags=[{"id": 1, "name": "sea"}])
    return CatalogueRecord(line=i, artwork_id=str(i), metadata=meta)


def test_recent_from_year_takes_whole_years():
    years = [2001] * 5 + [1995] * 10 + [1980] * 85
    assert recent_from_year(years, 0.05) == 2001
    assert recent_from_year(years, 0.1) == 1995  # 2001 alone holds 5 %: 1995 joins whole
    assert recent_from_year(years, 0.2) == 1980
    assert recent_from_year(years, 0.0) is None
    assert recent_from_year([], 0.1) is None


def test_recent_split_scores_recent_artworks_from_earlier_train_artworks_only():
    train = [_record(i, 1950 + i % 50) for i in range(200)] + [_record(1000 + i, None) for i in range(30)]
    rerank = [_record(2000 + i, 1950 + i) for i in range(50)]
    split = recent_split(train, rerank, 0.1, min_artworks=20)
    assert split is not None and split.from_year == 1995
    assert {r.metadata.acquisition_year for r in split.recent} == set(range(1995, 2000))
    assert len(split.recent) == 5 * 4 + 5  # 10 % of the 250 with a year: 4 train and 1 rerank artwork a year
    recent_ids = {r.artwork_id for r in split.recent}
    # earlier: train only, acquired before the recent ones or with no year; never a recent one
    assert all(r in train for r in split.earlier) and not recent_ids & {r.artwork_id for r in split.earlier}
    assert all((r.metadata.acquisition_year or 0) < 1995 for r in split.earlier)
    assert sum(r.metadata.acquisition_year is None for r in split.earlier) == 30
    # no acquisition years, or too few artworks: no lesson
    assert recent_split([_record(i, None) for i in range(300)], [], 0.1, min_artworks=20) is None
    assert recent_split(train, rerank, 0.1) is None  # 25 recent artworks: fewer than MIN_RECENT


def test_the_reranker_learns_from_recent_acquisitions(sample_catalogue):
    records, _ = load_catalogue(sample_catalogue)
    params = TrainParams(reranker={"max_iter": 30}, auto_apply_folds=0, refit_on_rerank=False)
    ensemble, report = train_ensemble(records, HashingEncoder(), params)
    recent = report["recent"]
    splits = split_records(records)
    pool_years = [r.metadata.acquisition_year for s in ("train", "rerank") for r in splits[s]
                  if r.metadata.acquisition_year is not None]
    assert recent["from_year"] == recent_from_year(pool_years, params.recent_share)
    assert recent["artworks"] == sum(y >= recent["from_year"] for y in pool_years)
    assert recent["earlier_artworks"] + sum(
        (r.metadata.acquisition_year or 0) >= recent["from_year"] for r in splits["train"]) == len(splits["train"])
    assert 0 < recent["positives"] < recent["pairs"] == report["reranker"]["extra_pairs"]
    # the lesson changes what the re-ranker learnt; without it, nothing is added
    off, off_report = train_ensemble(records, HashingEncoder(), params.model_copy(update={"recent_share": 0.0}))
    assert "recent" not in off_report and "extra_pairs" not in off_report["reranker"]
    x = np.random.default_rng(0).random((64, len(ensemble.feature_names)))
    x[:, [ensemble.feature_names.index(f) for f in CATEGORICAL]] = 0  # a known category code
    assert not np.allclose(ensemble.reranker.predict_proba(x), off.reranker.predict_proba(x))


def test_a_catalogue_without_acquisition_years_trains_as_before(sample_catalogue):
    records, _ = load_catalogue(sample_catalogue)
    undated = [dataclasses.replace(r, metadata=r.metadata.model_copy(update={"acquisition_year": None}))
               for r in records]
    params = TrainParams(reranker={"max_iter": 10}, auto_apply_folds=0, refit_on_rerank=False)
    _, report = train_ensemble(undated, HashingEncoder(), params)
    assert "recent" not in report and report["reranker"]["trained"]


def test_bundle_manifest_records_the_lesson(hashing_bundle_dir):
    training = read_manifest(hashing_bundle_dir)["training"]
    assert training["recent"]["artworks"] > 0
    assert training["timings"]["recent_s"] > 0
