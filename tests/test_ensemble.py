"""The two-step ensemble on the synthetic catalogue: right tags, calibrated-looking scores,
explanations from every source, and every SuggestOptions filter honoured."""

from __future__ import annotations

import inspect
import json
import shutil

import numpy as np
import pytest
from arttag.catalogue.synthetic import write_synthetic_catalogue
from arttag.encoders import HashingEncoder
from arttag.events import (
    ArtworkMetadata,
    AssignedTag,
    NeighbourEvidence,
    TagSuggestion,
    TermEvidence,
)
from arttag.model.bundle import load_tagger
from arttag.model.tagger import CatalogueTagger, SuggestOptions, TagCatalogue, Tagger
from arttag.model.training import train_bundle
from arttag.quality.ranking import (
    expected_calibration_error,
    ranking_metrics,
    subset_recall,
)

FAST = {"reranker": {"max_iter": 60}}


@pytest.fixture(scope="module")
def synthetic_bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("ens")
    catalogue = write_synthetic_catalogue(root / "cat.jsonl.gz")
    # The thesaurus names the lighthouse, which only a dev artwork carries: without it the
    # vocabulary (the training artworks' tags) would not hold it at all.
    from arttag.catalogue.synthetic import UNSEEN_TAG
    from arttag.catalogue.vocabulary import Tag, Vocabulary

    tag_id, label, group = UNSEEN_TAG
    Vocabulary([Tag(str(tag_id), label, group)]).to_csv(root / "thesaurus.csv")
    manifest = train_bundle(catalogue, root / "bundle", HashingEncoder(), FAST, vocabulary=root / "thesaurus.csv")
    return root / "bundle", manifest


@pytest.fixture(scope="module")
def tagger(synthetic_bundle):
    return load_tagger(synthetic_bundle[0], HashingEncoder())


HARBOUR = ArtworkMetadata(title="Fishing Boats in Naples Harbour", artists=["Joseph Mallord William Turner"],
                          medium="Oil paint on canvas", tags=[AssignedTag(id="1", label="harbour")])
PORTRAIT = ArtworkMetadata(title="Portrait of Lady Grey, Seated", artists=["Thomas Gainsborough"])


def test_bad_rows_are_reported_and_skipped_without_crashing_training(synthetic_bundle):
    _, manifest = synthetic_bundle
    data = manifest["data"]
    assert data["bad_rows"] == 4
    lines = [b["line"] for b in data["bad_row_examples"]]
    assert lines == [242, 243, 244, 245]  # 241 good rows come first
    errors = " ".join(b["error"] for b in data["bad_row_examples"])
    assert "title" in errors and "artists" in errors and "colour" in errors and "JSON" in errors


def test_ensemble_finds_the_known_tags(tagger):
    assert isinstance(tagger, Tagger) and isinstance(tagger, TagCatalogue) and isinstance(tagger, CatalogueTagger)
    harbour, portrait = tagger.suggest([HARBOUR, PORTRAIT])
    assert {s.label for s in harbour[:2]} == {"harbour", "boat, fishing"}
    assert {s.label for s in portrait[:2]} == {"portrait", "man"}
    assert all(0.0 <= s.confidence <= 1.0 for s in harbour + portrait)
    assert [s.score for s in harbour] == sorted((s.score for s in harbour), reverse=True)


def test_every_suggestion_is_explained_by_its_sources(tagger):
    [suggestions] = tagger.suggest([HARBOUR])
    top = suggestions[0]
    assert isinstance(top, TagSuggestion)
    by_scorer = {c.scorer: c for c in top.explanation.contributions}
    assert {"knn", "tfidf"} <= set(by_scorer)
    assert set(top.scorers) <= {"knn", "tfidf", "tfidf_artist", "linear", "semantic", "group", "artist", "accession", "mention"} and top.scorers
    neighbours = [e for e in by_scorer["tfidf"].evidence if isinstance(e, NeighbourEvidence)]
    assert neighbours and all(e.similarity > 0 for e in neighbours)
    assert any(e.kind == "term" for e in by_scorer["tfidf"].evidence)
    assert top.label in top.explanation.summary
    harbour = next(s for s in suggestions if s.tag_id == "1")
    assert harbour.already_assigned is True
    assert all(not s.already_assigned for s in suggestions if s.tag_id != "1")


def test_suggest_options_are_honoured(tagger):
    def ids(options):
        return [s.tag_id for s in tagger.suggest([HARBOUR], options)[0]]

    everything = ids(SuggestOptions(limit=50))
    assert len(everything) > 3
    assert ids(SuggestOptions(limit=2)) == everything[:2]
    assert "1" not in ids(SuggestOptions(only_new=True))
    assert "2" not in ids(SuggestOptions(exclude_tags=["2"]))
    assert set(ids(SuggestOptions(include_tags=["2", "5"]))) <= {"2", "5"}
    groups = {s.tag_id: s.group for s in tagger.suggest([HARBOUR], SuggestOptions(limit=50))[0]}
    only = ids(SuggestOptions(include_groups=["seascapes and coasts"], limit=50))
    assert only and all(groups[t] == "seascapes and coasts" for t in only)
    assert all(groups[t] != "seascapes and coasts" for t in ids(SuggestOptions(exclude_groups=["seascapes and coasts"], limit=50)))
    high = tagger.suggest([HARBOUR], SuggestOptions(min_confidence=0.5, limit=50))[0]
    assert all(s.confidence >= 0.5 for s in high)
    assert tagger.suggest([], None) == []


def test_manifest_and_metrics(synthetic_bundle, tagger):
    _, manifest = synthetic_bundle
    assert manifest["model_version"].startswith("tate-") and tagger.model_version == manifest["model_version"]
    assert manifest["encoder"]["name"] == "hashing-256"
    assert manifest["split_rule"].startswith("sha256")
    assert manifest["data"]["sha256"] and manifest["libraries"]["scikit-learn"]
    m = manifest["metrics"]
    assert m["ensemble"]["f1_at_5"] > 0.3 and m["ensemble"]["p_at_1"] > 0.8
    assert set(m["scorers"]) == {"knn", "tfidf", "tfidf_artist", "linear", "semantic", "group", "artist", "accession", "mention"}
    assert {"novel_text", "ece", "headline"} <= set(m)
    assert m["ensemble"]["unseen_pairs"] == 1  # the lighthouse


def test_semantic_tag_search(tagger):
    hits = tagger.search_tags_semantic("lighthouse", limit=3)
    assert hits[0][0].label == "lighthouse"
    assert hits[0][1] >= hits[-1][1]
    assert tagger.vocabulary.get("99").usage == 0
    assert tagger.encoder.name == "hashing-256"


def test_metrics_by_hand():
    m = ranking_metrics([[1, 2, 3, 4, 5], [9, 8]], [{1, 3}, {7}])
    assert m["documents"] == 2
    assert m["p_at_1"] == 0.5
    assert m["p_at_5"] == pytest.approx((2 / 5 + 0) / 2)
    assert m["r_at_5"] == pytest.approx((1.0 + 0) / 2)
    assert m["f1_at_5"] == pytest.approx((2 * 0.4 * 1.0 / 1.4) / 2)
    assert ranking_metrics([[1]], [set()])["documents"] == 0
    assert subset_recall([[1, 2], [3]], [{1, 5}, {5}], {5, 1})["recall"] == pytest.approx(1 / 3)
    assert expected_calibration_error([0.9, 0.9, 0.1, 0.1], [True, True, False, False]) == pytest.approx(0.1)


def test_summary_says_how_each_scorers_artworks_relate_to_this_one():
    from arttag.catalogue.vocabulary import Vocabulary
    from arttag.model.explain import summarise
    from arttag.scorers import get_scorer_class

    def phrases(name: str, evidence: list) -> list[str]:
        return get_scorer_class(name)(Vocabulary([])).summarise_evidence(evidence)

    near = NeighbourEvidence(artwork_id="D12344", title="Bridge at Dusk", similarity=0.5)
    word = TermEvidence(field="title", term="bridge", weight=0.9)
    text = summarise("bridge", 0.8, [*phrases("accession", [near]), *phrases("group", [near]),
                                     *phrases("mention", [word])], ["accession", "mention"])
    assert "accession: 1 tagged artwork(s) with neighbouring accession numbers carry it" in text
    assert "group: 1 tagged artwork(s) of the same group" in text
    assert "mention words: 'bridge' (title)" in text and text.endswith("proposed by accession, mention")


def _example(doc: str | None) -> str:
    """The code block after the first ``::`` of a docstring."""
    block = inspect.cleandoc(doc or "").split("::\n", 1)[1]
    lines = []
    for line in block.splitlines():
        if line and not line.startswith(" "):
            break
        lines.append(line)
    return inspect.cleandoc("\n".join(lines))


def _edited_copy(directory, out, spec):
    """A copy of the bundle with another ensemble.json, written as bundles were before their
    manifests recorded file hashes (an edited file would otherwise be refused as corrupt)."""
    shutil.copytree(directory, out)
    for name in ("ensemble.json", "manifest.json"):
        (out / name).chmod(0o644)  # versions are written read-only
    (out / "ensemble.json").write_text(json.dumps(spec))
    manifest = json.loads((out / "manifest.json").read_text())
    manifest.pop("files", None)
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def test_the_bundle_names_its_ensemble_kind_and_bundles_without_one_load_as_two_step(synthetic_bundle, tagger,
                                                                                  tmp_path):
    from arttag.model.ensemble import Ensemble

    directory, _ = synthetic_bundle
    spec = json.loads((directory / "ensemble.json").read_text())
    assert spec["kind"] == "two-step" and type(tagger.ensemble) is Ensemble
    del spec["kind"]
    older = _edited_copy(directory, tmp_path / "older", spec)
    again = load_tagger(older, HashingEncoder())
    assert type(again.ensemble) is Ensemble
    assert again.suggest([HARBOUR, PORTRAIT]) == tagger.suggest([HARBOUR, PORTRAIT])


def test_an_unknown_ensemble_kind_is_a_clear_error(synthetic_bundle, tmp_path):
    from arttag.errors import ConfigurationError

    directory, _ = synthetic_bundle
    spec = json.loads((directory / "ensemble.json").read_text())
    other = _edited_copy(directory, tmp_path / "other", {**spec, "kind": "stacked"})
    with pytest.raises(ConfigurationError, match="unknown ensemble kind 'stacked'; known: two-step"):
        load_tagger(other, HashingEncoder())


def test_a_new_ensemble_kind_plugs_in_by_name_and_is_explained(tagger, tmp_path, monkeypatch):
    """The kind in :class:`BaseEnsemble`'s docstring, registered, saved, loaded by name, explained."""
    from arttag.model.ensemble import (
        ENSEMBLES,
        BaseEnsemble,
        get_ensemble_class,
        load_ensemble,
    )
    from arttag.model.explain import build_suggestions
    from arttag.scorers import Batch

    module = tmp_path / "plugins" / "arttag_mean_ensemble.py"
    module.parent.mkdir()
    module.write_text("import numpy as np\n\nfrom arttag.model.ensemble import BaseEnsemble, Ranked\n\n\n"
                      + _example(BaseEnsemble.__doc__) + "\n")
    monkeypatch.syspath_prepend(str(module.parent))
    monkeypatch.setitem(ENSEMBLES, "mean", "arttag_mean_ensemble:MeanEnsemble")

    saved = tmp_path / "mean"
    scorers = tagger.ensemble.scorers
    get_ensemble_class("mean")(tagger.vocabulary, scorers).save(saved)
    assert json.loads((saved / "ensemble.json").read_text())["kind"] == "mean"
    mean = load_ensemble(saved, tagger.vocabulary)
    assert type(mean).__name__ == "MeanEnsemble" and [s.name for s in mean.scorers] == [s.name for s in scorers]

    batch = Batch.from_metadata([HARBOUR])
    batch.embeddings = tagger.encoder.encode(batch.texts)
    [ranked], cands = mean.rank(batch)
    expected = np.mean([ranked.source_scores[s.name] for s in scorers], axis=0)
    assert np.allclose(ranked.probs, expected) and np.all(np.diff(ranked.probs) <= 0)
    [suggestions] = build_suggestions(mean, [HARBOUR], batch, cands, [ranked], SuggestOptions(limit=5))
    assert suggestions and all(s.explanation.contributions and s.label in s.explanation.summary for s in suggestions)


def test_reranker_progress_shows_each_round_and_leaves_the_model_unchanged(capsys):
    from sklearn.ensemble import HistGradientBoostingClassifier

    from arttag.model.ensemble import _fit_showing_rounds

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 5))
    y = (x[:, 0] + rng.normal(size=3000) > 0).astype(int)
    shown = HistGradientBoostingClassifier(max_iter=30, random_state=0, verbose=2)
    _fit_showing_rounds(shown, x, y)
    quiet = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(x, y)
    assert np.array_equal(shown.predict_proba(x), quiet.predict_proba(x))
    assert shown.get_params() == quiet.get_params()  # same pickle, same bundle version
    err = capsys.readouterr().err
    assert "re-ranker rounds" in err and "30/30" in err


def test_a_tagger_call_scores_ranks_and_explains_with_the_ensembles_thread_limit(tagger, monkeypatch):
    from threadpoolctl import threadpool_info

    def pools():
        return {(i["internal_api"], i["filepath"]): i["num_threads"] for i in threadpool_info()
                if i["user_api"] in ("blas", "openmp")}

    outside = pools()
    seen: dict[str, list[dict]] = {"score": [], "explain": []}
    scorer = tagger.ensemble.scorers[0]
    score, explain_many = scorer.score, scorer.explain_many

    def spying_score(*args, **kwargs):
        seen["score"].append(pools())
        return score(*args, **kwargs)

    def spying_explain(*args, **kwargs):
        seen["explain"].append(pools())
        return explain_many(*args, **kwargs)

    monkeypatch.setattr(scorer, "score", spying_score)
    monkeypatch.setattr(scorer, "explain_many", spying_explain)
    doc = ArtworkMetadata(title="Town on Hill")
    tagger.suggest([doc])
    assert tagger.ensemble.threads == 1
    assert seen["score"] and seen["explain"]
    # The pools known when the tagger first limited them: numpy's and scipy's BLAS and
    # scikit-learn's OpenMP. A library loaded later by another test (torch's) is not limited;
    # the serving processes load none.
    from arttag.model import ensemble as ensemble_module

    limited = {(i["internal_api"], i["filepath"]) for i in ensemble_module._CONTROLLER.info()
               if i["user_api"] in ("blas", "openmp")}
    assert any(api == "openmp" for api, _ in limited)
    for during in seen["score"] + seen["explain"]:
        assert {during[pool] for pool in limited if pool in during} == {1}
    assert pools() == outside  # restored after the call

    monkeypatch.setattr(tagger.ensemble, "threads", None)  # the libraries' defaults
    seen["score"].clear()
    tagger.suggest([doc])
    assert seen["score"] == [outside]
