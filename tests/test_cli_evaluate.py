"""`arttag evaluate` on any tagged catalogue file, the whole of it or its dev split, with plots."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from arttag.catalogue.vocabulary import Tag, Vocabulary
from arttag.quality.eval_plots import calibration, precision_recall, recall_by_group
from arttag_cli.main import main

PNG = b"\x89PNG\r\n\x1a\n"


def _as_metadata_lines(sample: Path, n: int) -> list[dict]:
    out = []
    with gzip.open(sample, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if not row["tags"]:
                continue
            out.append({"artwork_id": str(row["id"]), "title": row["title"], "artists": row["artists"],
                        "medium": row["medium"],
                        "tags": [{"id": str(t["id"]), "label": t["name"], "group": t["parent"]} for t in row["tags"]]})
            if len(out) == n:
                return out
    return out


def test_evaluate_all_of_a_metadata_file_with_plots(capsys, tmp_path: Path, sample_catalogue: Path,
                                                    hashing_bundle_dir: Path):
    path = tmp_path / "tagged.json"
    path.write_text(json.dumps(_as_metadata_lines(sample_catalogue, 80)))
    figures, plots = tmp_path / "figures.json", tmp_path / "plots"
    assert main(["evaluate", str(path), "--bundle", str(hashing_bundle_dir), "--all", "--plots", str(plots),
                 "--json", str(figures), "--embedding-cache", str(tmp_path / "emb")]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "all split: 80 tagged artworks" in out
    result = json.loads(figures.read_text())
    assert result["split"] == "all" and result["dev_artworks"] == 80
    # the sample's artworks of the train and rerank splits are in the bundle: said, and counted
    from arttag.catalogue.split import split_of

    learnt = sum(1 for r in _as_metadata_lines(sample_catalogue, 80) if split_of(r["artwork_id"]) != "dev")
    assert 0 < result["seen_in_training"] == learnt < 80
    assert f"warning: {learnt} of the 80 artworks evaluated are artworks the bundle learnt from" in captured.err
    # artworks the bundle was trained on (most of them): the top tag is mostly right
    assert result["headline"]["p_at_1"] > 0.5
    for name in ("precision_recall.png", "calibration.png", "recall_by_group.png"):
        data = (plots / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 5_000
        assert str(plots / name) in out


def test_evaluate_dev_split_by_default_and_errors(capsys, tmp_path: Path, sample_catalogue: Path,
                                                  hashing_bundle_dir: Path):
    rows = _as_metadata_lines(sample_catalogue, 300)
    path = tmp_path / "tagged.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"title": ""}\n')
    assert main(["evaluate", str(path), "--bundle", str(hashing_bundle_dir),
                 "--embedding-cache", str(tmp_path / "emb")]) == 0
    captured = capsys.readouterr()
    dev = int(captured.out.split("dev split: ")[1].split()[0])
    assert 0 < dev < 300
    assert "learnt from" not in captured.err  # the dev split is held out of training
    assert "skipped line 301" in captured.err
    untagged = tmp_path / "untagged.jsonl"
    untagged.write_text('{"title": "Sea"}\n')
    assert main(["evaluate", str(untagged), "--bundle", str(hashing_bundle_dir)]) == 2
    assert "no artwork with tags" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["evaluate", str(path), "--split", "train"])


def test_curves_from_known_rankings():
    conf = [[0.9, 0.6, 0.1], [0.8, 0.3, 0.05]]
    correct = [[True, False, False], [True, True, False]]
    thresholds, precision, recall = precision_recall(conf, correct, gold_total=4)
    assert thresholds.tolist() == [0.9, 0.8, 0.6, 0.3, 0.1, 0.05]
    assert precision.tolist() == [1.0, 1.0, 2 / 3, 3 / 4, 3 / 5, 3 / 6]
    assert recall.tolist() == [0.25, 0.5, 0.5, 0.75, 0.75, 0.75]
    bins = calibration(conf, correct)
    assert [b["count"] for b in bins] == [1] * 6
    assert bins[-1] == {"confidence": 0.9, "accuracy": 1.0, "count": 1}
    vocab = Vocabulary([Tag("a", "a", "g1", "x", 1), Tag("b", "b", "g1", "x", 1), Tag("c", "c", "g2", "x", 1)])
    by_group = recall_by_group([[0, 2], [1]], [{0, 1}, {1, 2}], vocab)
    assert by_group == {"g1": {"recall": 2 / 3, "gold": 3}, "g2": {"recall": 0.0, "gold": 1}}


def test_evaluate_reports_views_and_the_new_acquisitions_split(capsys, tmp_path: Path, sample_catalogue: Path,
                                                              hashing_bundle_dir: Path):
    from arttag.catalogue.records import load_catalogue
    from arttag.catalogue.split import split_of

    records, _ = load_catalogue(sample_catalogue)
    tagged = [r for r in records if r.metadata.tags]
    figures = tmp_path / "dev.json"
    assert main(["evaluate", str(sample_catalogue), "--bundle", str(hashing_bundle_dir), "--json", str(figures),
                 "--embedding-cache", str(tmp_path / "emb")]) == 0
    out = capsys.readouterr().out
    dev = json.loads(figures.read_text())
    views = dev["views"]
    assert 0 < views["isolated_new_artist"]["artworks"] <= views["isolated"]["artworks"] < dev["dev_artworks"]
    assert views["isolated"]["novel_text"]["artworks"] <= views["isolated"]["artworks"]
    assert dev["headline"]["isolated_f1_at_5"] == views["isolated"]["ensemble"]["f1_at_5"]
    assert "isolated, by an artist with no work in training" in out
    # thresholds stored at training are checked on dev
    assert set(dev["auto_apply"]) == {"0.95", "0.9"}

    figures = tmp_path / "new.json"
    assert main(["evaluate", str(sample_catalogue), "--bundle", str(hashing_bundle_dir), "--split",
                 "new-acquisitions", "--acquired-from", "1990", "--json", str(figures),
                 "--embedding-cache", str(tmp_path / "emb")]) == 0
    new = json.loads(figures.read_text())
    assert new["split"] == "new-acquisitions" and new["acquired_from"] == 1990
    assert new["dev_artworks"] == sum(1 for r in tagged if (r.metadata.acquisition_year or 0) >= 1990)
    assert new["training_artworks"] == sum(1 for r in tagged if r.metadata.acquisition_year is not None
                                           and r.metadata.acquisition_year < 1990
                                           and split_of(r.artwork_id) != "dev")
    assert "isolated" in new["views"]
