"""The examples in README.md and docs/ stay right: every `arttag` command line parses, the ones
that need no broker and no model run, and the tag ids the API examples use are the sample's.
The README's broker steps (stream, backfill, tail, the API, curate) run in test_cli_examples_kafka.py."""

from __future__ import annotations

import csv
import json
import re
import shlex
from pathlib import Path

import pytest
from arttag_cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "docs" / "cli.md", ROOT / "docs" / "api.md"]


def _commands(path: Path) -> list[list[str]]:
    """`arttag ...` command lines of a Markdown file's bash blocks, as argument lists (comments,
    `&` and what comes before a pipe left out)."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].split("|")[-1].strip().rstrip("&").strip()
            if not re.match(r"(\S*/)?arttag ", line):
                continue
            words = shlex.split(line)
            if words and words[0].endswith("arttag"):
                out.append(words[1:])
    return out


README_COMMANDS = _commands(ROOT / "README.md")


def test_readme_has_the_runnable_examples():
    verbs = [c[0] for c in README_COMMANDS]
    assert {"train", "suggest", "audit", "stream", "backfill", "tail", "api", "topics"} <= set(verbs)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_documented_command_line_parses(path: Path):
    parser = build_parser()
    for argv in _commands(path):
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            pytest.fail(f"{path.name}: `arttag {' '.join(argv)}` does not parse (exit {exc.code})")


def _swap(argv: list[str], option: str, value: str) -> list[str]:
    i = argv.index(option)
    return [*argv[: i + 1], value, *argv[i + 2:]]


def test_readme_hashing_examples_run(capsys, tmp_path: Path, hashing_bundle_dir: Path, monkeypatch):
    monkeypatch.chdir(ROOT)
    [train] = [c for c in README_COMMANDS if c[0] == "train" and "hashing" in c]
    # the session's bundle is trained exactly so (sample catalogue, hashing encoder, no evaluation)
    assert train[1] == "shared/arttag/data/tate_sample.jsonl.gz" and "--no-evaluate" in train
    suggests = [c for c in README_COMMANDS if c[0] == "suggest"]
    assert len(suggests) == 2
    for argv in suggests:
        argv = _swap(argv, "--bundle", str(hashing_bundle_dir)) if "--bundle" in argv else [
            *argv, "--bundle", str(hashing_bundle_dir)]
        assert main(argv) == 0
        out = capsys.readouterr().out
        if "table" in argv:
            assert "artwork ex-1 (line 1): 'Brighton Beach at Sunset'" in out and "beach" in out
        else:
            records = [json.loads(line) for line in out.splitlines()]
            assert [r["artwork_id"] for r in records] == ["ex-1", "ex-2", "ex-3"]
            assert all(len(r["suggestions"]) == 3 for r in records)
            assert "horse" in [s["label"] for s in records[2]["suggestions"]]


def test_readme_audit_example_runs(capsys, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(ROOT)
    [audit] = [c for c in README_COMMANDS if c[0] == "audit"]
    assert "hashing" in audit
    argv = _swap(audit, "--out", str(tmp_path / "audit"))
    assert main([*argv, "--no-progress", "--embedding-cache", str(tmp_path / "emb")]) == 0
    assert (tmp_path / "audit" / "audit.html").exists()


def test_api_examples_use_the_sample_vocabulary(hashing_bundle_dir: Path):
    with open(hashing_bundle_dir / "vocabulary.csv", encoding="utf-8") as fh:
        labels = {row["id"]: row["label"] for row in csv.DictReader(fh)}
    text = (ROOT / "docs" / "api.md").read_text() + (ROOT / "README.md").read_text()
    pairs = re.findall(r'\{"id": "(\d+)", "label": "([^"]+)"', text)
    ids = re.findall(r'"tag_id": "(\d+)"', text) + re.findall(r"/v1/tags/(\d+)", text)
    assert pairs and ids
    for tag_id, label in pairs:
        assert labels.get(tag_id) == label, f"tag {tag_id} is {labels.get(tag_id)!r}, not {label!r}"
    for tag_id in ids:
        assert tag_id in labels
    assert labels["1518"] == "harbour"
