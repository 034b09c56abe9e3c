from __future__ import annotations

import gzip
import json

from arttag.catalogue.records import load_catalogue


def test_sample_catalogue_loads(sample_catalogue):
    records, report = load_catalogue(sample_catalogue)
    assert len(records) > 3000
    assert report.rows_read == len(records) + len(report.bad_rows)
    tagged = [r for r in records if r.metadata.tags]
    assert len(tagged) > 2500
    assert all(t.label and t.group for t in tagged[0].metadata.tags)


def test_bad_rows_are_reported_with_their_line_and_skipped(tmp_path):
    good = {"id": 1, "title": "Hill", "artists": ["Turner"], "year": "no date",
            "tags": [{"id": 5, "name": "hill", "parent": "landscape"}]}
    lines = [
        json.dumps(good),
        json.dumps({"id": 2, "artists": ["X"]}),                 # missing title
        json.dumps({"id": 3, "title": "T", "artists": "Turner"}),  # wrong type
        json.dumps({"id": 4, "title": "T", "colour": "red"}),      # unknown field
        "{not json",
        json.dumps({"id": 6, "title": "Fine"}),
    ]
    path = tmp_path / "cat.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    records, report = load_catalogue(path)
    assert [r.artwork_id for r in records] == ["1", "6"]
    assert records[0].metadata.year is None
    assert [b.line for b in report.bad_rows] == [2, 3, 4, 5]
    assert "title" in report.bad_rows[0].error
    assert "artists" in report.bad_rows[1].error
    assert "colour" in report.bad_rows[2].error
