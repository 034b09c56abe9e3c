"""bench/quality_vs_annif.py's own logic: Annif's project file, reading what Annif prints, the
optimize grid, and which Annif configuration is the anchor per view (no Annif needed)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _load():
    sys.path.insert(0, str(REPO / "bench"))  # the script imports its sibling machine_info
    try:
        spec = importlib.util.spec_from_file_location("arttag_bench_quality_vs_annif", REPO / "bench" / "quality_vs_annif.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(REPO / "bench"))


q = _load()


def _sections(cfg: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    current = None
    for line in cfg.splitlines():
        if line.startswith("["):
            current = out.setdefault(line.strip("[]"), {})
        elif "=" in line and current is not None:
            k, _, v = line.partition("=")
            current[k] = v
    return out


def test_projects_cfg_gives_ensembles_their_sources_and_weights_and_no_analyzer():
    systems = q.with_sources(["pav", "ensemble-tuned", "svc"])
    cfg = _sections(q.projects_cfg(systems, {"ensemble-tuned": {"omikuji": 0.5, "fasttext": 0.3, "mllm": 0.2}}))
    assert cfg["tate-pav"]["backend"] == "pav"
    assert cfg["tate-pav"]["sources"] == "tate-omikuji:1,tate-fasttext:1,tate-mllm:1"
    assert cfg["tate-ensemble-tuned"]["sources"] == "tate-omikuji:0.5000,tate-fasttext:0.3000,tate-mllm:0.2000"
    assert "analyzer" not in cfg["tate-pav"] and "analyzer" not in cfg["tate-ensemble-tuned"]
    assert cfg["tate-svc"]["analyzer"] == "snowball(english)" and cfg["tate-svc"]["backend"] == "svc"
    assert all(v["vocab"] == q.VOCAB_ID and v["limit"] == "100" for v in cfg.values())


def test_with_sources_adds_every_ensembles_sources_first_in_training_order():
    assert q.with_sources(["nn"]) == ["omikuji", "fasttext", "mllm", "nn"]
    assert q.with_sources(["nn", "svc"]) == ["omikuji", "fasttext", "mllm", "svc", "nn"]
    assert q.with_sources(["ensemble", "tfidf"]) == ["tfidf", "omikuji", "fasttext", "mllm", "ensemble"]
    with pytest.raises(ValueError, match="unknown Annif systems"):
        q.with_sources(["ebm"])


OPTIMIZE_OUTPUT = """Limit\tThresh.\tPrec.\tRec.\tF1
1\t0.00\t0.8000\t0.2000\t0.3000

Best Precision (doc avg): 0.9130\tLimit: 1\tThreshold: 0.90
Best    Recall (doc avg): 0.7012\tLimit: 15\tThreshold: 0.00
Best F1 score (doc avg): 0.4521\tLimit: 6\tThreshold: 0.15
Documents evaluated:\t150
"""


def test_parse_optimize_reads_annifs_best_lines():
    best = q.parse_optimize(OPTIMIZE_OUTPUT)
    assert best["F1 score (doc avg)"] == {"score": 0.4521, "limit": 6, "threshold": 0.15}
    assert best["Recall (doc avg)"]["limit"] == 15 and best["Precision (doc avg)"]["threshold"] == 0.9
    with pytest.raises(ValueError, match="Best F1"):
        q.parse_optimize("Limit\tThresh.\n")


def test_parse_hyperopt_sources_reads_the_recommended_line():
    out = "Looking for optimal hyperparameters using 40 trials\nGot best NDCG score 0.7000 with:\n---\n" \
          "sources=tate-omikuji:0.6123,tate-fasttext:0.3000,tate-mllm:0.0877\n---\n"
    assert q.parse_hyperopt_sources(out) == {"omikuji": 0.6123, "fasttext": 0.3, "mllm": 0.0877}
    with pytest.raises(ValueError):
        q.parse_hyperopt_sources("no recommendation")


def test_filter_suggestions_keeps_the_top_limit_at_or_above_the_threshold():
    scored = [[(3, 0.9), (1, 0.5), (7, 0.2), (2, 0.1)], [(4, 0.05)]]
    assert q.filter_suggestions(scored, 3, 0.2) == [[3, 1, 7], []]
    assert q.filter_suggestions(scored, 1, 0.0) == [[3], [4]]


def test_optimize_grid_finds_the_document_averaged_best_and_lets_later_ties_win():
    scored = [[(1, 0.9), (2, 0.6), (3, 0.3)], [(5, 0.8), (6, 0.1)]]
    gold = [{1, 2}, {6}]
    best = q.optimize_grid(scored, gold, limits=(1, 2, 3), thresholds=(0.0, 0.5))
    # limit 2, threshold 0: doc 1 keeps {1,2} (F1 1), doc 2 keeps {5,6} (F1 2/3) -> 5/6.
    assert best["F1 score (doc avg)"]["score"] == pytest.approx(5 / 6)
    assert (best["F1 score (doc avg)"]["limit"], best["F1 score (doc avg)"]["threshold"]) == (2, 0.0)
    # Recall 1.0 is reached at limit 2 and 3 with threshold 0: the later (limit 3) wins, as in Annif.
    assert best["Recall (doc avg)"] == {"score": 1.0, "limit": 3, "threshold": 0.0}
    # Precision: limit 2, threshold 0 keeps {1,2} (1) and {5,6} (1/2); limit 3 adds a miss to doc 1.
    assert best["Precision (doc avg)"] == {"score": 0.75, "limit": 2, "threshold": 0.0}


def test_optimize_grid_scores_an_emptied_document_as_zero():
    best = q.optimize_grid([[(1, 0.2)]], [{1}], limits=(1,), thresholds=(0.5,))
    assert best["F1 score (doc avg)"]["score"] == 0.0 and best["Precision (doc avg)"]["score"] == 0.0


def _metrics(f1, ndcg):
    return {"f1_at_5": f1, "ndcg_at_10": ndcg}


def test_best_per_metric_picks_each_metrics_own_best_annif_configuration():
    systems = {"arttag": _metrics(0.9, 0.9), "annif-omikuji": _metrics(0.40, 0.70),
               "annif-pav": _metrics(0.45, 0.66), "annif-pav+optimized": _metrics(0.45, 0.60)}
    assert q.best_per_metric(systems) == {"f1_at_5": "pav", "ndcg_at_10": "omikuji"}
    assert q.best_per_metric({"arttag": _metrics(1, 1)}) == {"f1_at_5": None, "ndcg_at_10": None}


def _views():
    return {
        "all": {"artworks": 10, "annif_best": {"f1_at_5": "pav", "ndcg_at_10": "nn"},
                "systems": {"arttag": _metrics(0.5, 0.7), "annif-pav": _metrics(0.48, 0.65), "annif-nn": _metrics(0.47, 0.69)}},
        "isolated": {"artworks": 4, "annif_best": {"f1_at_5": "nn", "ndcg_at_10": "nn"},
                     "systems": {"arttag": _metrics(0.3, 0.4), "annif-pav": _metrics(0.2, 0.3), "annif-nn": _metrics(0.25, 0.35)}},
    }


def test_view_headline_anchors_each_metric_on_its_own_best_and_gives_the_lead():
    h = q.view_headline(_views())
    assert "all_artworks" not in h  # the whole view is the headline's own keys
    assert h["isolated_artworks"] == 4
    assert h["isolated_annif_best_f1_at_5"] == 0.25 and h["isolated_annif_best_ndcg_at_10"] == 0.35
    assert h["isolated_lead_f1_at_5"] == pytest.approx(0.05) and h["isolated_lead_ndcg_at_10"] == pytest.approx(0.05)
    assert q.anchor(_views()["all"], "ndcg_at_10") == 0.69


def test_merge_new_acquisitions_adds_the_new_acq_keys(tmp_path: Path):
    target = tmp_path / "random.json"
    target.write_text(json.dumps({"headline": {"arttag_f1_at_5": 0.5, "annif_best_system_per_view": {"all": {"f1_at_5": "pav"}}}}))
    result = {"headline": {"arttag_f1_at_5": 0.3, "annif_best_f1_at_5": 0.28, "arttag_ndcg_at_10": 0.4,
                           "annif_best_ndcg_at_10": 0.41, "annif_best_system": "pav", "dev_artworks": 10,
                           "arttag_model_version": "v", "annif_best_system_per_view": {"all": {"f1_at_5": "pav", "ndcg_at_10": "nn"}}},
              "views": _views(), "command": "c", "finished_at": "t", "data": {}, "annif": {}, "arttag": {}, "timings": {}}
    q.merge_new_acquisitions(target, result)
    h = json.loads(target.read_text())["headline"]
    assert h["arttag_f1_at_5"] == 0.5  # the random view's own figures stay
    assert h["new_acq_arttag_f1_at_5"] == 0.3 and h["new_acq_annif_best_ndcg_at_10"] == 0.41
    assert h["new_acq_lead_f1_at_5"] == pytest.approx(0.02) and h["new_acq_lead_ndcg_at_10"] == pytest.approx(-0.01)
    assert h["new_acq_isolated_annif_best_f1_at_5"] == 0.25
    assert h["annif_best_system_per_view"] == {"all": {"f1_at_5": "pav"},
                                               "new_acquisitions_all": {"f1_at_5": "pav", "ndcg_at_10": "nn"}}


def test_merge_new_acquisitions_refuses_a_run_with_another_vocabulary_or_refit(tmp_path: Path):
    target = tmp_path / "random.json"
    target.write_text(json.dumps({"headline": {"vocabulary": "catalogue + thesaurus"}}))
    result = {"headline": {"vocabulary": "catalogue"}}
    with pytest.raises(SystemExit, match="same --vocabulary"):
        q.merge_new_acquisitions(target, result)
    assert json.loads(target.read_text()) == {"headline": {"vocabulary": "catalogue + thesaurus"}}
    target.write_text(json.dumps({"headline": {}, "annif": {"refit": True}}))
    with pytest.raises(SystemExit, match="with --refit, the new-acquisitions run without"):
        q.merge_new_acquisitions(target, {"headline": {}, "annif": {"refit": False}})


def test_vocabulary_record_names_the_thesaurus_both_systems_learnt_with(tmp_path: Path):
    from arttag.catalogue.vocabulary import load_vocabulary

    assert "thesaurus" not in q.vocabulary_record(None, None)
    path = tmp_path / "thesaurus.csv"
    path.write_text("id,label,group\n2,tree,nature\n3,river,nature\n")
    thesaurus = load_vocabulary(path)
    record = q.vocabulary_record(path, thesaurus)
    assert "plus every term of the thesaurus" in record["source"]
    assert record["thesaurus"]["terms"] == len(thesaurus) > 0
    assert record["thesaurus"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_shown_path_keeps_no_machine_layout():
    spec = importlib.util.spec_from_file_location("arttag_test_repo_hygiene", REPO / "tests" / "test_repo_hygiene.py")
    hygiene = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hygiene)
    machine_paths = hygiene.machine_paths
    # a folder right under the root, neither the checkout, beside it, nor the home folder
    root_level = "/" + "srv/arttag-test-bundles"
    shown = q.shown_path(root_level)
    assert shown.startswith(".../") and shown.endswith("arttag-test-bundles") and not machine_paths(shown)
    assert "//" not in shown
    assert q.shown_path(REPO / "bench" / "results") == "bench/results"


def test_merge_result_merges_a_finished_new_acquisitions_file_and_refuses_another(tmp_path: Path):
    target = tmp_path / "random.json"
    target.write_text(json.dumps({"headline": {"view": "random", "arttag_f1_at_5": 0.5}}))
    new_acq = tmp_path / "new_acq.json"
    result = {"headline": {"view": "new-acquisitions", "arttag_f1_at_5": 0.3, "annif_best_f1_at_5": 0.2,
                           "arttag_ndcg_at_10": 0.4, "annif_best_ndcg_at_10": 0.3, "annif_best_system": "nn",
                           "dev_artworks": 3, "arttag_model_version": "v", "annif_best_system_per_view": {}},
              "views": {}, "command": "c", "finished_at": "t", "data": {}, "annif": {}, "arttag": {}, "timings": {}}
    new_acq.write_text(json.dumps(result))
    assert q.main(["--merge-result", str(new_acq), "--merge-into", str(target)]) == 0
    merged = json.loads(target.read_text())
    assert merged["headline"]["new_acq_annif_best_f1_at_5"] == 0.2 and merged["new_acquisitions"]["command"] == "c"
    with pytest.raises(SystemExit):
        q.main(["--merge-result", str(target), "--merge-into", str(target)])  # a random-view file


def test_reused_annif_takes_an_earlier_run_only_when_its_suggestions_give_its_figures(tmp_path: Path):
    from arttag.catalogue.vocabulary import Tag, Vocabulary

    vocab = Vocabulary([Tag(id=str(i), label=f"tag {i}") for i in range(6)])
    gold = [{0, 1}, {2}, {5}]
    suggested = [[0, 3, 1], [2, 4], [1]]
    (tmp_path / "out").mkdir()
    with open(tmp_path / "out" / "omikuji.jsonl", "w") as fh:
        for tags in suggested:
            fh.write(json.dumps({"results": [{"uri": q.URI_PREFIX + str(t), "score": 1.0 - 0.1 * k}
                                             for k, t in enumerate(tags)]}) + "\n")
    hashes = {"vocab.tsv": "a", "dev.tsv": "b"}
    metrics = q.score(suggested, gold, set(), set())
    tuned = q.score(q.filter_suggestions(q.read_index_output(tmp_path / "out" / "omikuji.jsonl", vocab, 3), 2, 0.95),
                    gold, set(), set())
    earlier = {"headline": {"view": "random"}, "data": {"input_sha256": hashes},
               "annif": {"version": "1.4.3", "refit": False, "projects_cfg": "[tate-omikuji]",
                         "systems": {"omikuji": {"metrics": metrics, "optimize": {"limit": 2, "threshold": 0.95}},
                                     "omikuji+optimized": {"metrics": tuned}}}}
    path = tmp_path / "earlier.json"
    path.write_text(json.dumps(earlier))

    def reuse(**changed):
        args = {"path": path, "view": "random", "work": tmp_path, "hashes": hashes, "version": "1.4.3",
                "systems": ["omikuji"], "vocab": vocab, "gold": gold, "rare": set(), "unseen": set(), "n_docs": 3,
                "refit": False, **changed}
        return q.reused_annif(**args)

    results, rankings, cfg = reuse()
    assert rankings["omikuji"] == suggested and rankings["omikuji+optimized"] == [[0], [2], [1]]
    assert results["omikuji"]["metrics"] == metrics and cfg == "[tate-omikuji]"
    for changed in ({"hashes": {**hashes, "dev.tsv": "c"}}, {"version": "1.5.0"}, {"refit": True},
                    {"systems": ["omikuji", "nn"]}, {"n_docs": 4}):
        with pytest.raises(SystemExit):
            reuse(**changed)
    # suggestions on disk that no longer give the stored figures are refused
    earlier["annif"]["systems"]["omikuji"]["metrics"] = {**metrics, "f1_at_5": metrics["f1_at_5"] + 0.01}
    path.write_text(json.dumps(earlier))
    with pytest.raises(SystemExit, match="no longer give"):
        reuse()
