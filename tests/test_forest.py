"""The compiled re-ranker (arttag.model.forest) gives scikit-learn's probabilities: numeric and
categorical splits, missing values, categories never seen in training; the ensemble uses it,
and falls back to predict_proba (warned once) when a model cannot be compiled."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest
from arttag.model import forest as forest_module
from arttag.model.forest import CompileError, FlatForest, RerankerPredictor
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

# Categorical columns in the middle of the matrix (scikit-learn moves them first internally),
# with codes that are not 0..n-1: column 2 has 40 categories spread over 0..200, column 4 has 6.
CAT_COLUMNS = [2, 4]
GROUPS = np.arange(40) * 5.0
AREAS = np.array([0.0, 1.0, 2.0, 3.0, 7.0, 9.0])


def make_data(rng: np.random.Generator, n: int, unseen: bool = False) -> np.ndarray:
    x = rng.normal(size=(n, 7))
    x[:, 2] = rng.choice(GROUPS, size=n)
    x[:, 4] = rng.choice(AREAS, size=n)
    x[:, 6] = rng.integers(0, 4, size=n)  # a numeric column with ties on its thresholds
    # Missing values in numeric and categorical columns.
    for column in (0, 3, 2, 4):
        x[rng.random(n) < 0.08, column] = np.nan
    if unseen:  # categories the model never saw, negative ones, fractional ones
        for column, values in ((2, [1.0, 201.0, -5.0, 2.5, 1e6]), (4, [4.0, 8.0, -1.0, 255.0])):
            rows = rng.random(n) < 0.1
            x[rows, column] = rng.choice(values, size=rows.sum())
        x[:5, 0] = [np.inf, -np.inf, 0.0, -0.0, 1e300]
    return x


def make_target(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    group_effect = np.isin(x[:, 2], GROUPS[::3]).astype(float) - 0.5
    area_effect = np.where(x[:, 4] >= 3, 1.0, -0.7)
    signal = np.nan_to_num(x[:, 0]) + group_effect + area_effect + 0.5 * x[:, 6] - np.isnan(x[:, 3])
    return (signal + rng.normal(scale=0.7, size=len(x)) > 0.5).astype(int)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(7)
    x = make_data(rng, 4000)
    model = HistGradientBoostingClassifier(max_iter=80, max_leaf_nodes=31, min_samples_leaf=10,
                                           categorical_features=CAT_COLUMNS, random_state=0, early_stopping=False)
    model.fit(x, make_target(rng, x))
    return model, make_data(np.random.default_rng(8), 3000, unseen=True)


def test_the_compiled_trees_give_predict_proba_on_every_kind_of_split(fitted):
    model, x = fitted
    nodes = [p.nodes for (p,) in model._predictors]
    interior = np.concatenate([n[n["is_leaf"] == 0] for n in nodes])
    # The model does exercise what the kernel must get right.
    assert interior["is_categorical"].any() and (interior["is_categorical"] == 0).any()
    assert interior["missing_go_to_left"].any() and (interior["missing_go_to_left"] == 0).any()
    assert np.isnan(x).any() and not np.isin(x[:, 2][~np.isnan(x[:, 2])], GROUPS).all()

    forest = FlatForest.from_model(model)
    expected = model.predict_proba(x)[:, 1]
    got = forest.predict_positive(x)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-9
    assert np.abs(forest.raw(x) - model._raw_predict(x)[:, 0]).max() <= 1e-9
    # Rows in parts on several threads: the same figures.
    assert np.abs(forest.predict_positive(x, threads=3) - expected).max() <= 1e-9
    assert np.abs(forest.predict_positive(x, threads=None) - expected).max() <= 1e-9
    assert forest.predict_positive(x[:0]).shape == (0,)


def test_a_model_without_categorical_features_and_with_64_leaves_compiles():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3000, 4))
    x[rng.random(3000) < 0.05, 1] = np.nan
    y = (x[:, 0] * x[:, 2] + np.nan_to_num(x[:, 1]) > 0).astype(int)
    model = HistGradientBoostingClassifier(max_iter=20, max_leaf_nodes=64, min_samples_leaf=5,
                                           random_state=0, early_stopping=False).fit(x, y)
    assert max(p.get_n_leaf_nodes() for (p,) in model._predictors) == 64
    test = rng.normal(size=(500, 4))
    test[::7, 1] = np.nan
    got = FlatForest.from_model(model).predict_positive(test)
    assert np.abs(got - model.predict_proba(test)[:, 1]).max() <= 1e-9


def test_what_cannot_be_compiled_is_said(fitted):
    model, x = fitted
    with pytest.raises(CompileError, match="HistGradientBoostingClassifier"):
        FlatForest.from_model(LogisticRegression())
    rng = np.random.default_rng(2)
    big = rng.normal(size=(3000, 3))
    wide = HistGradientBoostingClassifier(max_iter=3, max_leaf_nodes=100, min_samples_leaf=2,
                                          early_stopping=False).fit(big, rng.integers(0, 2, size=3000))
    with pytest.raises(CompileError, match="leaves"):
        FlatForest.from_model(wide)
    multi = HistGradientBoostingClassifier(max_iter=3, early_stopping=False).fit(big, (big[:, :2] > 0).sum(axis=1))
    with pytest.raises(CompileError, match="binary"):
        FlatForest.from_model(multi)
    with pytest.raises(ValueError, match="features"):
        FlatForest.from_model(model).raw(x[:, :5])


def test_the_predictor_falls_back_to_predict_proba_and_warns_once(fitted, caplog):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1000, 3))
    wide = HistGradientBoostingClassifier(max_iter=5, max_leaf_nodes=100, min_samples_leaf=2,
                                          early_stopping=False).fit(x, rng.integers(0, 2, size=1000))
    predictor = RerankerPredictor(wide)
    with caplog.at_level(logging.WARNING, logger="arttag.model.forest"):
        first, second = predictor(x), predictor(x[:10])
    assert not predictor.compiled
    assert np.array_equal(first, wide.predict_proba(x)[:, 1]) and np.array_equal(second, first[:10])
    assert len([r for r in caplog.records if "predict_proba" in r.getMessage()]) == 1


def test_without_numba_the_predictor_uses_predict_proba(fitted, monkeypatch, caplog):
    model, x = fitted
    monkeypatch.setattr("arttag.compiled._COMPILED", {})  # nothing compiled yet in this process
    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` raises ImportError
    predictor = RerankerPredictor(model)
    with caplog.at_level(logging.WARNING, logger="arttag.model.forest"):
        got = predictor(x)
    assert not predictor.compiled
    assert "numba is not installed" in caplog.text
    assert np.array_equal(got, model.predict_proba(x)[:, 1])


# -- in the ensemble ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic_ensemble(tmp_path_factory):
    from arttag.catalogue.synthetic import write_synthetic_catalogue
    from arttag.encoders import HashingEncoder
    from arttag.model.bundle import load_tagger
    from arttag.model.training import train_bundle

    root = tmp_path_factory.mktemp("forest")
    catalogue = write_synthetic_catalogue(root / "cat.jsonl.gz")
    train_bundle(catalogue, root / "bundle", HashingEncoder(), {"reranker": {"max_iter": 60}, "evaluate": False})
    return load_tagger(root / "bundle", HashingEncoder()).ensemble


def features_of(ens, titles):
    from arttag.events import ArtworkMetadata
    from arttag.scorers.base import Batch

    batch = Batch.from_metadata([ArtworkMetadata(title=t) for t in titles])
    from arttag.encoders import HashingEncoder

    batch.embeddings = np.asarray(HashingEncoder().encode(batch.texts), dtype=np.float32)
    cands = ens.gather(batch)
    return np.vstack([ens.pair_features(batch, cands, row).matrix for row in range(len(batch))])


TITLES = ["Fishing Boats in Naples Harbour", "Portrait of Lady Grey, Seated", "Town on Hill", "Storm at Sea"]


def test_a_loaded_ensemble_merges_with_the_compiled_trees(synthetic_ensemble):
    ens = synthetic_ensemble
    assert ens.reranker_predictor is not None and ens.reranker_predictor.compiled  # built at load
    features = features_of(ens, TITLES)
    # Unseen category codes too: tags whose group or area the re-ranker never saw.
    groups = ens.feature_names.index("tag_group")
    features = np.vstack([features, features[:3]])
    features[-3:, groups] = [999.0, -1.0, np.nan]
    got = ens._merge(features)
    assert np.abs(got - ens.reranker.predict_proba(features)[:, 1]).max() <= 1e-9


def test_a_replaced_reranker_is_used_and_one_that_cannot_be_compiled_falls_back(synthetic_ensemble, caplog):
    import copy

    ens = copy.copy(synthetic_ensemble)  # the fixture's ensemble keeps its re-ranker
    features = features_of(ens, TITLES)
    rng = np.random.default_rng(0)
    linear = LogisticRegression().fit(rng.normal(size=(50, features.shape[1])), np.arange(50) % 2)
    with caplog.at_level(logging.WARNING, logger="arttag.model.forest"):
        ens.reranker = linear
        got = ens._merge(features)
    assert ens.reranker_predictor is not None and ens.reranker_predictor.model is linear
    assert np.array_equal(got, linear.predict_proba(features)[:, 1])
    assert "cannot be compiled" in caplog.text
    ens.reranker = None
    assert ens.reranker_predictor is None
    assert ens._merge(features).shape == (len(features),)  # the untrained fallback


def test_a_compiled_form_that_differs_from_the_model_is_not_used(fitted, monkeypatch, caplog):
    import dataclasses

    model, x = fitted
    build = FlatForest.from_model
    monkeypatch.setattr(FlatForest, "from_model", classmethod(
        lambda cls, m: dataclasses.replace(build(m), baseline=build(m).baseline + 1e-6)))
    predictor = RerankerPredictor(model)
    with caplog.at_level(logging.WARNING, logger="arttag.model.forest"):
        got = predictor(x)
    assert not predictor.compiled
    assert "differ from predict_proba" in caplog.text
    assert np.array_equal(got, model.predict_proba(x)[:, 1])
