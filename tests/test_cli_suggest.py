"""`arttag suggest` on a real (hashing-encoder) bundle: input formats, many artworks, output formats, reasons, errors."""

from __future__ import annotations

import gzip
import io
import json
import sys
from pathlib import Path

import pytest
from arttag.events import TermEvidence
from arttag_cli.artwork_input import parse_item
from arttag_cli.main import main
from arttag.model.readable import readable_term, short_title


def _run(capsys, *argv: str, stdin: str | None = None, monkeypatch=None) -> tuple[int, str, str]:
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode("utf-8"))))
    rc = main(["suggest", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


BEACH = {"title": "Brighton Beach at sunset", "medium": "Watercolour on paper", "artwork_id": "b1"}
HORSE = {"title": "Sketch of a horse", "artwork_id": "h1"}


def test_json_lines_file_many_artworks_one_object_each(capsys, tmp_path: Path, hashing_bundle_dir: Path):
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps(BEACH) + "\n\n" + json.dumps(HORSE) + "\n")
    rc, out, err = _run(capsys, str(path), "--bundle", str(hashing_bundle_dir), "--limit", "3")
    assert rc == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["artwork_id"] for r in records] == ["b1", "h1"]
    assert [r["input"] for r in records] == ["line 1", "line 3"]
    beach = records[0]["suggestions"]
    assert len(beach) == 3 and "beach" in [s["label"] for s in beach]
    top = next(s for s in beach if s["label"] == "beach")
    # the short reason cites catalogued artworks by title, and the word of the title
    assert "similar catalogued artwork" in top["reason"] and "Beach" in top["reason"]
    assert "the title names 'beach'" in top["reason"]
    assert "explanation" not in top


def test_stdin_single_object_and_json_list(capsys, monkeypatch, hashing_bundle_dir: Path):
    rc, out, _ = _run(capsys, "--bundle", str(hashing_bundle_dir), "--format", "json",
                      stdin=json.dumps(BEACH, indent=2), monkeypatch=monkeypatch)
    assert rc == 0
    [record] = json.loads(out)
    assert record["title"] == BEACH["title"] and len(record["suggestions"]) == 10
    rc, out, _ = _run(capsys, "-", "--bundle", str(hashing_bundle_dir), "--format", "json", "--limit", "2",
                      stdin=json.dumps([BEACH, HORSE, {"artwork": HORSE, "artwork_id": "ev"}]),
                      monkeypatch=monkeypatch)
    records = json.loads(out)
    assert [r["artwork_id"] for r in records] == ["b1", "h1", "ev"]
    assert [r["input"] for r in records] == ["item 1", "item 2", "item 3"]


def test_catalogue_export_gzipped(capsys, tmp_path: Path, sample_catalogue: Path, hashing_bundle_dir: Path):
    with gzip.open(sample_catalogue, "rt", encoding="utf-8") as fh:
        rows = [next(fh) for _ in range(3)]
    path = tmp_path / "three.jsonl.gz"
    path.write_bytes(gzip.compress("".join(rows).encode("utf-8")))
    rc, out, err = _run(capsys, str(path), "--bundle", str(hashing_bundle_dir), "--limit", "5", "--only-new")
    assert rc == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["artwork_id"] for r in records] == [str(json.loads(row)["id"]) for row in rows]
    for record, row in zip(records, rows):
        assigned = {str(t["id"]) for t in json.loads(row)["tags"]}
        assert not assigned & {s["tag_id"] for s in record["suggestions"]}


def test_table_and_full_explanation(capsys, tmp_path: Path, hashing_bundle_dir: Path):
    path = tmp_path / "one.json"
    path.write_text(json.dumps(BEACH))
    rc, out, _ = _run(capsys, str(path), "--bundle", str(hashing_bundle_dir), "--format", "table",
                      "--limit", "2", "--explain", "full")
    assert rc == 0
    assert out.startswith("artwork b1 (input): 'Brighton Beach at sunset'")
    assert "   1. beach" in out
    assert "similar artwork " in out and "(weight " in out  # full evidence, fragments included
    rc, out, _ = _run(capsys, str(path), "--bundle", str(hashing_bundle_dir), "--format", "jsonl",
                      "--explain", "full", "--limit", "1")
    [s] = json.loads(out)["suggestions"]
    assert s["explanation"]["contributions"] and s["reason"]


def test_bad_artworks_are_reported_and_the_others_tagged(capsys, tmp_path: Path, hashing_bundle_dir: Path):
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join([
        json.dumps({"title": "x" * 2001, "artwork_id": "long"}),
        "{not json",
        json.dumps({"title": "Town on Hill", "artist": ["Turner"], "artwork_id": "t"}),
        json.dumps({"title": "Harbour", "description": "y" * 20_001}),
    ]) + "\n")
    rc, out, err = _run(capsys, str(path), "--bundle", str(hashing_bundle_dir), "--limit", "1")
    assert rc == 1
    records = [json.loads(line) for line in out.splitlines()]
    assert [("error" in r) for r in records] == [True, True, False, True]
    assert "title" in records[0]["error"] and "2000" in records[0]["error"]
    assert "description" in records[3]["error"] and "20000" in records[3]["error"]
    assert len(records[2]["suggestions"]) == 1
    assert "unknown field 'artist' ignored; did you mean 'artists'?" in err
    assert "artwork long (line 1): not an artwork" in err
    assert "line 2: not JSON" in err
    assert "1 artwork(s) tagged, 3 could not be read" in err


@pytest.mark.parametrize("argv, message", [
    (["--limit", "-1"], "--limit must be ≥ 1"),
    (["--limit", "0"], "--limit must be ≥ 1"),
    (["--limit", "201"], "--limit must be ≤ 200"),
    (["--limit", "ten"], "--limit must be a whole number"),
    (["--min-confidence", "1.5"], "--min-confidence must be from 0 to 1"),
])
def test_option_errors_name_the_option(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(["suggest", *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_a_folder_is_every_artwork_file_in_it_by_name(capsys, tmp_path: Path, hashing_bundle_dir: Path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    lines = json.dumps(HORSE) + "\n" + json.dumps({**HORSE, "artwork_id": "h2"}) + "\n"
    (folder / "b.jsonl.gz").write_bytes(gzip.compress(lines.encode("utf-8")))
    (folder / "a.json").write_text(json.dumps(BEACH))
    (folder / "c.ndjson").write_text("{not json\n")
    (folder / "d.json").write_text("")
    (folder / "notes.txt").write_text("not an artwork")
    (folder / "sub" / "e.json").write_text(json.dumps({"title": "Ignored", "artwork_id": "e"}))
    rc, out, err = _run(capsys, str(folder), "--bundle", str(hashing_bundle_dir), "--limit", "1")
    records = [json.loads(line) for line in out.splitlines()]
    assert [(r.get("artwork_id"), r["input"]) for r in records] == [
        ("b1", "a.json"), ("h1", "b.jsonl.gz: line 1"), ("h2", "b.jsonl.gz: line 2"),
        (None, "c.ndjson: line 1"), (None, "d.json")]
    assert [len(r.get("suggestions", [])) for r in records] == [1, 1, 1, 0, 0]
    assert "c.ndjson: line 1: not JSON" in err and "d.json: empty file" in err
    assert rc == 1 and "3 artwork(s) tagged, 2 could not be read" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    rc, _, err = _run(capsys, str(empty), "--bundle", str(hashing_bundle_dir))
    assert rc == 2 and "is a folder with no artwork files (.json, .jsonl, .ndjson, gzipped or not)" in err


def test_reasons_name_titles_whole_and_leave_out_fragments(capsys, tmp_path: Path, hashing_bundle_dir: Path,
                                                          sample_catalogue: Path):
    from arttag.catalogue.records import iter_catalogue

    # the sample's own artworks, whose neighbours include long titles and possessives
    rows = [r for r, _ in zip(iter_catalogue(sample_catalogue), range(120))]
    path = tmp_path / "many.jsonl"
    path.write_text("".join(json.dumps({**r.metadata.model_dump(mode="json"), "artwork_id": r.artwork_id}) + "\n"
                            for r in rows))
    rc, out, err = _run(capsys, str(path), "--bundle", str(hashing_bundle_dir), "--limit", "5",
                        "--explain", "full")
    assert rc == 0, err
    suggestions = [s for line in out.splitlines() for s in json.loads(line)["suggestions"]]
    assert len(suggestions) == 600
    long_whole = long_cut = 0
    for s in suggestions:
        reason = s["reason"]
        assert "'s' (" not in reason and " s' (" not in reason  # no possessive fragment
        titles = {e["title"] for c in s["explanation"]["contributions"] for e in c["evidence"]
                  if e["kind"] == "neighbour"}
        for title in titles:
            if len(title) <= 40 or f"'{title[:40]}" not in reason:
                continue  # short, or not among the titles the reason cites
            if len(title) <= 100:
                assert f"'{title}' 0." in reason or f"'{title}' 1." in reason  # whole
                long_whole += 1
            else:
                cut = short_title(title)
                assert f"'{cut}' " in reason and cut.endswith(" …") and title.startswith(cut[:-2])
                long_cut += 1
    assert long_whole > 10 and long_cut > 0


def test_missing_and_empty_input(capsys, tmp_path: Path, hashing_bundle_dir: Path):
    rc, _, err = _run(capsys, str(tmp_path / "nope.json"), "--bundle", str(hashing_bundle_dir))
    assert rc == 2 and "input file not found" in err
    empty = tmp_path / "empty.json"
    empty.write_text("\n")
    rc, _, err = _run(capsys, str(empty), "--bundle", str(hashing_bundle_dir))
    assert rc == 2 and "is empty" in err


def test_unknown_catalogue_row_field_gets_a_guess():
    item = parse_item("line 1", {"id": 1, "acno": "T1", "title": "Sea", "subjects_level_1": []})
    assert item.metadata is not None
    assert item.warnings == ["unknown field 'subjects_level_1' ignored; did you mean 'subjects_level1'?"]
    item = parse_item("line 2", ["not", "an", "object"])
    assert item.error == "not a JSON object but list"


def test_readable_terms_leave_out_fragments_stop_words_and_zero_weight():
    from arttag.events import ArtworkMetadata

    meta = ArtworkMetadata(title="Brighton Beach at sunset, Mother’s Day", medium="Watercolour on paper")
    keep = [TermEvidence(field="title", term="brighton beach", weight=0.1),
            TermEvidence(field="medium", term="watercolour", weight=0.1)]
    drop = [TermEvidence(field="title", term="bea", weight=0.2),
            TermEvidence(field="title", term=" suns", weight=0.2),
            TermEvidence(field="title", term="at", weight=0.2),
            TermEvidence(field="medium", term="watercolour on", weight=0.2),
            TermEvidence(field="title", term="sunset", weight=0.0),
            TermEvidence(field="title", term="s", weight=0.2),
            TermEvidence(field="title", term="mother s", weight=0.2),
            TermEvidence(field="text embedding", term="(whole text)", weight=0.3)]
    assert [readable_term(t, meta) for t in keep] == [True, True]
    assert [readable_term(t, meta) for t in drop] == [False] * len(drop)


def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path: Path, hashing_bundle_dir: Path):
    import os
    import subprocess

    path = tmp_path / "many.jsonl"
    path.write_text("".join(json.dumps({**HORSE, "artwork_id": f"h{i}"}) + "\n" for i in range(300)))
    proc = subprocess.Popen([sys.executable, "-m", "arttag_cli", "suggest", str(path), "--bundle",
                             str(hashing_bundle_dir), "--explain", "full", "--format", "jsonl"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ})
    first = proc.stdout.readline()
    proc.stdout.close()  # as `| head -1` does
    _, err = proc.communicate(timeout=300)
    assert json.loads(first)["artwork_id"] == "h0"
    assert proc.returncode == 141 and b"Traceback" not in err, err.decode()
