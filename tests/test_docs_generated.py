"""docs/benchmarks.md is generated from bench/results/*.json and must match them, and so must the
figures the other docs quote in their prose."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def _load_renderer():
    spec = importlib.util.spec_from_file_location("arttag_bench_render_docs", REPO / "bench" / "render_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render_docs = _load_renderer()


@pytest.fixture()
def results(tmp_path: Path) -> Path:
    """A copy of the committed results files that a test may change."""
    target = tmp_path / "results"
    shutil.copytree(RESULTS, target)
    return target


def test_benchmarks_doc_matches_the_results_files():
    expected = render_docs.render(RESULTS)
    current = (REPO / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    assert current == expected, "docs/benchmarks.md is stale: run `python bench/render_docs.py`"


def test_every_committed_results_file_has_a_section_with_its_command_and_machine():
    text = render_docs.render(RESULTS)
    for path in RESULTS.glob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        section = text.split(f"`bench/results/{path.name}`", 1)
        assert len(section) == 2, f"no section for {path.name}"
        body = section[1].split("\n## ", 1)[0]
        assert "Command" in body
        if data.get("command"):
            assert str(data["command"]).splitlines()[0] in body
        if data.get("machine"):
            assert "Machine: " in body and "not recorded" not in body.split("Machine: ", 1)[1][:20]


def test_a_figure_changed_in_a_results_file_changes_the_docs(results: Path):
    path = results / "quality.json"
    data = json.loads(path.read_text())
    data["ensemble"]["f1_at_5"] = 0.123456
    path.write_text(json.dumps(data))
    row = next(line for line in render_docs.render(results).splitlines() if line.startswith("| **ensemble**"))
    assert "**0.123**" in row
    assert render_docs.render(results) != render_docs.render(RESULTS)


def test_an_absent_results_file_drops_only_its_section(results: Path):
    (results / "stream.json").unlink()
    text = render_docs.render(results)
    assert "## Stream worker" not in text
    assert "## Encoder speed and fidelity" in text
    assert "## Quality against Annif" in text


def test_no_results_files_at_all(tmp_path: Path):
    text = render_docs.render(tmp_path)
    assert text.startswith("# Benchmarks")
    assert "No results files yet." in text


def test_an_unknown_results_file_gets_its_headline_as_a_table(results: Path):
    chaos = {
        "command": "python bench/chaos.py --kill-every 30",
        "machine": {"cpu": "Test CPU", "cores": 4, "memory_gb": 8.0},
        "headline": {"events_lost": 0, "recovery_s": 12.5, "target_met": True},
    }
    (results / "chaos.json").write_text(json.dumps(chaos))
    text = render_docs.render(results)
    section = text.split("## `chaos`", 1)[1]
    assert "python bench/chaos.py --kill-every 30" in section
    assert "Test CPU (4 cores)" in section
    assert "| `events_lost` | 0 |" in section
    assert "| `recovery_s` | 12.5 |" in section
    assert "| `target_met` | yes |" in section
    # Unknown files come after the known ones.
    assert text.index("## `chaos`") > text.index("## HTTP API")


def test_a_known_file_with_a_changed_layout_falls_back_to_its_headline(results: Path):
    (results / "encoder.json").write_text(json.dumps({"headline": {"int8_vs_fp32_bs32": 2.5}}))
    text = render_docs.render(results)
    assert "| `int8_vs_fp32_bs32` | 2.5 |" in text
    assert "Command (the file records no command line: the producing script)" in text


def test_check_reports_a_stale_file_and_write_fixes_it(results: Path, tmp_path: Path, capsys):
    out = tmp_path / "benchmarks.md"
    docs = ["--docs", str(tmp_path / "no-docs")]
    assert render_docs.main(["--results", str(results), "--out", str(out), "--check", *docs]) == 1
    assert "stale" in capsys.readouterr().err
    assert render_docs.main(["--results", str(results), "--out", str(out), *docs]) == 0
    assert render_docs.main(["--results", str(results), "--out", str(out), "--check", *docs]) == 0
    (results / "api.json").unlink()
    assert render_docs.main(["--results", str(results), "--out", str(out), "--check", *docs]) == 1


# -- figures quoted in the prose of the other docs ---------------------------------------------------


def test_the_figures_the_docs_quote_match_the_results_files():
    quoting = render_docs.render_quoted_figures(REPO / "docs", RESULTS)
    assert {"stream.md", "encoder.md"} <= {doc.name for doc in quoting}
    for doc, expected in quoting.items():
        assert doc.read_text(encoding="utf-8") == expected, f"{doc.name} is stale: run `python bench/render_docs.py`"


def test_a_figure_changed_in_a_results_file_changes_the_quoted_figure_and_check_catches_it(
        results: Path, tmp_path: Path, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(REPO / "docs" / "stream.md", docs / "stream.md")
    out = tmp_path / "benchmarks.md"
    args = ["--results", str(results), "--out", str(out), "--docs", str(docs)]
    assert render_docs.main(args) == 0
    path = results / "scaleout.json"
    data = json.loads(path.read_text())
    data["headline"]["single_worker_events_per_s"] = 50.04
    path.write_text(json.dumps(data))
    assert render_docs.main([*args, "--check"]) == 1
    assert f"{docs / 'stream.md'} is stale" in capsys.readouterr().err
    assert render_docs.main(args) == 0
    text = (docs / "stream.md").read_text()
    assert "headline.single_worker_events_per_s .1f -->50.0<!-- /figure --> artworks/s" in text
    assert render_docs.main([*args, "--check"]) == 0


def test_a_quoted_figure_whose_value_is_gone_fails_naming_the_doc_and_the_value(results: Path, tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "page.md").write_text("ran <!-- figure encoder.json headline.gone .1f -->2.4<!-- /figure -->x\n")
    with pytest.raises(render_docs.FigureError, match="page.md: encoder.json has no headline.gone"):
        render_docs.render_quoted_figures(docs, results)
    (docs / "page.md").write_text("ran <!-- figure nowhere.json headline.x .1f -->2.4<!-- /figure -->x\n")
    with pytest.raises(render_docs.FigureError, match="no results file nowhere.json"):
        render_docs.render_quoted_figures(docs, results)


def test_a_quoted_figure_may_not_begin_a_line_where_markdown_would_read_it_as_raw_html(
        results: Path, tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    figure = "<!-- figure encoder.json headline.int8_vs_fp32_bs32 .1f -->2.4<!-- /figure -->x"
    (docs / "page.md").write_text(f"int8 ran\n  {figure} fp32\n")
    with pytest.raises(render_docs.FigureError, match="begins a line"):
        render_docs.render_quoted_figures(docs, results)
    (docs / "page.md").write_text(f"int8\nran {figure} fp32\n")
    assert render_docs.render_quoted_figures(docs, results)[docs / "page.md"] == f"int8\nran {figure} fp32\n"


def test_the_cost_section_shows_every_stage_and_both_versions():
    text = render_docs.render(RESULTS)
    section = text.split("## Cost per artwork, stage by stage", 1)[1].split("\n## ", 1)[0]
    data = json.loads((RESULTS / "cost.json").read_text())
    for stage in data["stages_ms_per_artwork"]:
        assert f"| {stage} |" in section
    assert "| before |" in section and "| after |" in section
    assert f"| `post_encoder_speedup_vs_before` | {data['headline']['post_encoder_speedup_vs_before']} |" in section


def test_each_annif_comparison_has_its_own_heading_and_says_whether_annif_was_refitted(results: Path):
    text = render_docs.render(results)
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert len(headings) == len(set(headings)), "two sections share a heading (and an anchor)"
    annif = [h for h in headings if h.startswith("## Quality against Annif")]
    assert annif[0] == "## Quality against Annif" and "## Quality against Annif, both with the thesaurus" in annif
    path = results / "quality_vs_annif.json"
    data = json.loads(path.read_text())
    for refit, heading, words in ((True, "## Quality against Annif, Annif refitted\n", "trained again on train + rerank"),
                                  (False, "## Quality against Annif\n", "no `--refit`")):
        data["annif"]["refit"] = refit
        path.write_text(json.dumps(data))
        body = render_docs.render(results).split(heading, 1)[1].split("\n## ", 1)[0]
        assert words in body
