"""`arttag train --decisions`: accepted tags become labels, rejected ones re-ranker negatives,
and the manifest counts what was used."""

from __future__ import annotations

import json

from arttag.catalogue.split import split_of
from arttag.catalogue.synthetic import synthetic_rows, write_synthetic_catalogue
from arttag.encoders import HashingEncoder
from arttag.model.bundle import load_tagger, read_manifest
from arttag_cli.main import main

from .helpers import curator
from .test_learning import decisions


def test_train_with_decisions_uses_them_and_the_manifest_counts_them(tmp_path, capsys):
    catalogue = write_synthetic_catalogue(tmp_path / "cat.jsonl.gz")
    harbours = [str(r["id"]) for r in synthetic_rows() if r["tags"] and r["tags"][0]["id"] == 1]
    trained = next(a for a in harbours if split_of(a) == "train")
    reranked = next(a for a in harbours if split_of(a) == "rerank")
    records = [
        decisions(trained, curator(trained, "99", "accepted", 1),   # lighthouse: a new label
                  curator(trained, "12345", "added", 2)),           # not in the vocabulary
        decisions(reranked, curator(reranked, "1", "rejected", 1)),  # harbour: catalogued, rejected
        decisions("not-in-the-catalogue", curator("not-in-the-catalogue", "5", "accepted", 1)),
    ]
    source = tmp_path / "decisions.jsonl"
    source.write_text("".join(json.dumps(r.model_dump(mode="json")) + "\n" for r in records) + "{not json\n")

    out = tmp_path / "bundle"
    assert main(["train", str(catalogue), "--out", str(out), "--encoder", "hashing", "--no-evaluate",
                 "--decisions", str(source)]) == 0
    used = read_manifest(out)["training"]["decisions"]
    assert used == {"source": str(source), "records": 3, "bad_records": 1, "artworks": 2, "accepted_labels": 1,
                    "rejected_labels_removed": 1, "unknown_tags": 1, "unknown_artworks": 1,
                    "rejected_negatives": 1}
    assert "1 accepted label(s) added" in capsys.readouterr().out
    # the scorers learned the decided labels
    tagger = load_tagger(out, HashingEncoder())
    knn, vocab = tagger.ensemble.scorer("knn"), tagger.vocabulary
    labels = {a: {vocab.tags[int(i)].id for i in knn.label_lists[knn.ids.index(a)]} for a in (trained, reranked)}
    assert labels[trained] == {"1", "2", "99"} and labels[reranked] == {"2"}
