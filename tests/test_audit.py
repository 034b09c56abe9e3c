"""The audit's checks on a crafted catalogue: every known duplicate, gap and inconsistency is found."""

from __future__ import annotations

import gzip
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from arttag.catalogue.records import load_catalogue
from arttag.catalogue.split import split_of
from arttag.catalogue.vocabulary import Tag
from arttag.encoders import HashingEncoder
from arttag.events import ArtworkMetadata
from arttag.model.fake_tagger import FakeTagger, TitleRule
from arttag.quality.audit import AuditOptions, run_audit
from arttag.quality.audit.duplicates import (
    difference_kind,
    lexical_key,
    near_duplicate_tags,
)
from arttag.quality.audit.report import write_report

TAGS = {
    "horse": (1, "horse", "animals: mammals"),
    "horses": (2, "horses", "animals: mammals"),           # plural of horse
    "Horse": (3, "Horse", "animals: mammals"),             # case of horse
    "dog": (4, "dog", "animals: mammals"),
    "sea_stormy": (5, "seascape, stormy", "seascapes and coasts"),
    "sea_stormy_night": (6, "seascape, stormy, night", "seascapes and coasts"),  # near-identical embedding
    "coast_rocky": (7, "coast, rocky", "seascapes and coasts"),
    "rocky_coast": (8, "rocky coast", "seascapes and coasts"),  # word order
    "river": (9, "river", "rivers"),
    "unique": (10, "lighthouse", "features"),              # used once
}


def dev_ids(n: int, start: int = 1000) -> list[int]:
    out, i = [], start
    while len(out) < n:
        if split_of(str(i)) == "dev":
            out.append(i)
        i += 1
    return out


def train_ids(n: int, start: int = 5000) -> list[int]:
    out, i = [], start
    while len(out) < n:
        if split_of(str(i)) == "train":
            out.append(i)
        i += 1
    return out


def _tags(*keys: str) -> list[dict]:
    return [{"id": TAGS[k][0], "name": TAGS[k][1], "parent": TAGS[k][2]} for k in keys]


def crafted_rows() -> list[str]:
    d = dev_ids(6)
    t = train_ids(12)
    rows = [
        # Sketchbook A: three near-identical studies whose tags disagree (one has "dog" too).
        {"id": d[0], "title": "Study of a Horse", "artists": ["J.M.W. Turner"], "year": 1800,
         "medium": "Graphite on paper", "group_title": "Sketchbook A", "acquisition_year": 1856,
         "tags": _tags("horse")},
        {"id": d[1], "title": "Study of a Horse", "artists": ["J.M.W. Turner"], "year": 1800,
         "medium": "Graphite on paper", "group_title": "Sketchbook A", "acquisition_year": 1856,
         "tags": _tags("horse", "dog")},
        {"id": t[0], "title": "Study of a Horse", "artists": ["J.M.W. Turner"], "year": 1800,
         "medium": "Graphite on paper", "group_title": "Sketchbook A", "acquisition_year": 1856,
         "tags": _tags("horse")},
        # Sketchbook B: near-identical and consistent, so not a finding.
        {"id": t[1], "title": "River Bank", "artists": ["J.M.W. Turner"], "year": 1801,
         "medium": "Watercolour", "group_title": "Sketchbook B", "acquisition_year": 1856,
         "tags": _tags("river")},
        {"id": t[2], "title": "River Bank", "artists": ["J.M.W. Turner"], "year": 1801,
         "medium": "Watercolour", "group_title": "Sketchbook B", "acquisition_year": 1856,
         "tags": _tags("river")},
        # Different works in one sketchbook: not near-identical, so not compared as duplicates.
        {"id": t[3], "title": "Stormy Sea off a Rocky Coast at Night", "artists": ["J.M.W. Turner"],
         "year": 1802, "medium": "Oil paint on canvas", "group_title": "Sketchbook B",
         "acquisition_year": 1856, "tags": _tags("sea_stormy", "coast_rocky")},
        {"id": t[4], "title": "Horses Grazing", "artists": ["George Stubbs"], "year": 1770,
         "medium": "Oil paint on canvas", "acquisition_year": 1975, "inscription": "",
         "tags": _tags("horses")},
        {"id": t[5], "title": "A Horse", "artists": ["George Stubbs"], "medium": "Oil paint on canvas",
         "acquisition_year": 1982, "tags": _tags("Horse")},
        {"id": t[6], "title": "Night Storm at Sea", "artists": ["Anon"], "year": 1850,
         "acquisition_year": 1990, "tags": _tags("sea_stormy_night")},          # medium missing
        {"id": t[7], "title": "Rocks and Coast", "artists": ["Anon"], "year": 1851,
         "acquisition_year": 1990, "tags": _tags("rocky_coast", "unique")},    # medium missing
        # Untagged artworks: coverage gaps.
        {"id": t[8], "title": "Untagged Landscape", "artists": ["Anon"], "medium": "Oil paint on canvas"},
        {"id": t[9], "title": "Another Untagged Work", "artists": [], "medium": ""},
        {"id": d[2], "title": "A Horse and a Dog", "artists": ["George Stubbs"], "medium": "Oil paint on canvas",
         "acquisition_year": 1975, "tags": _tags("horse")},
        {"id": d[3], "title": "River Scene", "artists": ["Anon"], "medium": "Watercolour",
         "acquisition_year": 1990, "tags": _tags("river")},
    ]
    lines = [json.dumps(r) for r in rows]
    lines.insert(3, "{this is not json")                                   # line 4: bad row
    lines.insert(7, json.dumps({"id": 999, "artists": ["Nobody"]}))       # line 8: no title
    return lines


def write_catalogue(path: Path) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(crafted_rows()) + "\n")
    return path


def fake_tagger() -> FakeTagger:
    """Suggests 'horse' for titles with 'Horse' and 'dog' for titles with 'Dog' (0.9), 'river' for 'River' (0.8)."""
    return FakeTagger([TitleRule(word, Tag(str(TAGS[key][0]), TAGS[key][1], TAGS[key][2]), conf)
                       for word, key, conf in (("Horse", "horse", 0.9), ("Dog", "dog", 0.9), ("River", "river", 0.8))])


OPTIONS = AuditOptions(tag_similarity=0.7, artwork_similarity=0.95, progress=False)


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    return write_catalogue(tmp_path_factory.mktemp("audit") / "crafted.jsonl.gz")


@pytest.fixture(scope="module")
def audit(catalogue):
    return run_audit(catalogue, HashingEncoder(dim=4096), None, OPTIONS)


@pytest.fixture(scope="module")
def audit_with_model(catalogue):
    return run_audit(catalogue, HashingEncoder(dim=4096), fake_tagger(), OPTIONS)


def test_bad_rows_are_reported_not_fatal(audit):
    rows = audit["rows"]
    assert rows["good"] == 14 and rows["bad"] == 2
    assert [b["line"] for b in rows["bad_rows"]] == [4, 8]
    assert "title" in rows["bad_rows"][1]["error"]


def test_coverage_finds_untagged_artworks_and_absent_fields(audit):
    cov = audit["coverage"]
    assert cov["untagged"] == 2
    assert {e["title"] for e in cov["untagged_examples"]} == {"Untagged Landscape", "Another Untagged Work"}
    assert cov["fields"]["medium"] == {"missing": 2, "empty": 1, "absent_share": round(3 / 14, 4)}
    assert cov["fields"]["inscription"]["empty"] == 1
    assert cov["fields"]["title"]["absent_share"] == 0.0
    assert cov["tags_per_artwork"]["histogram"] == {"0": 2, "1": 9, "2": 3}


def test_usage_long_tail_and_decades(audit):
    usage = audit["usage"]
    once = {t["label"] for t in usage["used_once"]["tags"]}
    assert "lighthouse" in once and "horse" not in once
    assert usage["most_used"][0]["label"] == "horse" and usage["most_used"][0]["usage"] == 4
    decades = {d["decade"]: d for d in usage["by_acquisition_decade"]}
    assert decades["1850s"]["artworks"] == 6 and decades["1850s"]["tagged_share"] == 1.0
    assert decades[None]["artworks"] == 2 and decades[None]["tagged"] == 0


def test_lexical_near_duplicates(audit):
    groups = {g["key"]: g for g in audit["duplicates"]["lexical"]["groups"]}
    horse = groups[lexical_key("horse")]
    assert {t["label"] for t in horse["tags"]} == {"horse", "horses", "Horse"}
    assert horse["keep"] == "1"  # the most used one
    assert set(horse["kinds"]) == {"case", "plural"}
    assert all(t["examples"] for t in horse["tags"])
    coast = groups[lexical_key("rocky coast")]
    assert {t["label"] for t in coast["tags"]} == {"coast, rocky", "rocky coast"}
    assert coast["kinds"] == ["word order"]


def test_embedding_near_duplicates(audit):
    pairs = audit["duplicates"]["semantic"]["pairs"]
    labels = [{t["label"] for t in p["tags"]} for p in pairs]
    assert {"seascape, stormy", "seascape, stormy, night"} in labels
    # Lexical findings are not repeated as embedding findings.
    assert {"horse", "horses"} not in labels
    found = next(p for p in pairs if {t["label"] for t in p["tags"]} == {"seascape, stormy", "seascape, stormy, night"})
    assert all(t["usage"] == 1 and t["examples"] for t in found["tags"])


def test_difference_kinds():
    assert difference_kind("Bridge", "bridge") == "case"
    assert difference_kind("boat - non-specific", "boat") == "punctuation"
    assert difference_kind("coast, rocky", "rocky coast") == "word order"
    assert difference_kind("church", "churches") == "plural"
    assert difference_kind("city", "cities") == "plural"
    assert difference_kind("sea", "ocean") == "other"
    assert difference_kind("Ceret", "Céret") == "accents"
    assert lexical_key("Ceret") == lexical_key("céret")


def test_structured_siblings_are_not_duplicates():
    from arttag.quality.audit.duplicates import structured_siblings

    assert structured_siblings("Luke, chapter 10", "Luke, chapter 22")
    assert structured_siblings("George I, King", "George II, King")
    assert structured_siblings("Venice, Palazzo Reale", "Venice, Palazzo Rezzonico")
    assert not structured_siblings("townscape", "townscape, distant")
    assert not structured_siblings("bell jar", "glass bell-jar")
    assert not structured_siblings("seascape, stormy", "seascape, stormy, night")


def test_near_duplicates_without_encoder_are_lexical_only(catalogue):
    records, _ = load_catalogue(catalogue)
    result = near_duplicate_tags(records, None, progress=False)
    assert result["lexical"]["count"] == 2 and result["semantic"]["pairs"] == []


def test_labelling_consistency(audit):
    cons = audit["consistency"]
    assert cons["inconsistent_groups"] == 1
    [group] = cons["groups"]
    assert group["block"] == "group: sketchbook a" and group["size"] == 3
    assert group["common_tags"] == ["horse"]
    assert group["disagreeing_tags"] == [{"tag_id": "4", "label": "dog", "carried_by": 1}]
    assert cons["per_tag"]["4"]["inconsistency"] == 1.0
    assert cons["per_tag"]["9"]["inconsistency"] == 0.0  # the consistent River Bank pair


def test_model_sections_are_skipped_with_a_note_without_a_bundle(audit):
    for key in ("overlooked", "learnability"):
        assert audit[key]["skipped"] is True
        assert "--bundle" in audit[key]["note"]


def test_overlooked_tags_are_ranked(audit_with_model):
    o = audit_with_model["overlooked"]
    assert o["scope"] == "dev"
    [top] = o["candidates"]
    assert top["label"] == "dog" and top["title"] == "A Horse and a Dog" and top["confidence"] == 0.9
    assert top["assigned"] == ["horse"]


def test_overlooked_on_all_artworks(catalogue):
    audit = run_audit(catalogue, HashingEncoder(), fake_tagger(),
                      AuditOptions(overlooked_on="all", progress=False, semantic_tags=False))
    titles = {c["title"] for c in audit["overlooked"]["candidates"]}
    assert titles == {"A Horse and a Dog", "Horses Grazing", "A Horse"}
    assert audit["learnability"]["dev_artworks_evaluated"] == 4


def test_learnability_per_tag(audit_with_model):
    learn = audit_with_model["learnability"]
    assert learn["dev_artworks_evaluated"] == 4  # the tagged dev artworks
    tags = {t["label"]: t for t in learn["tags"]}
    assert tags["horse"]["precision"] == 1.0 and tags["horse"]["recall"] == 1.0
    assert tags["horse"]["dev_support"] == 3 and tags["horse"]["train_usage"] == 1
    assert tags["river"]["recall"] == 1.0
    assert tags["horse"]["diagnosis"] == "learnable"
    # "dog": carried by one dev artwork whose title does not say so, predicted on another one.
    assert (tags["dog"]["precision"], tags["dog"]["recall"], tags["dog"]["f1"]) == (0.0, 0.0, 0.0)
    assert tags["dog"]["train_usage"] == 0 and tags["dog"]["diagnosis"] == "too rare"
    assert tags["dog"]["inconsistency"] is None  # fewer than 3 observations
    assert learn["micro"] == {"precision": 0.8, "recall": 0.8, "f1": 0.8}
    assert tags["horse"]["has_near_duplicate"] is True


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a.get("id"))
        if tag == "img":
            self.images.append(a.get("src", ""))

    def handle_data(self, data):
        self.text.append(data)


def test_report_html_and_json(audit_with_model, tmp_path):
    json_path, html_path = write_report(audit_with_model, tmp_path / "out")
    assert json.loads(json_path.read_text())["consistency"]["inconsistent_groups"] == 1
    page = _Page()
    page.feed(html_path.read_text())
    assert page.sections == ["rows", "coverage", "usage", "duplicates", "consistency", "overlooked", "learnability"]
    assert len(page.images) >= 6
    assert all(src.startswith("data:image/png;base64,iVBOR") for src in page.images)
    text = " ".join(page.text)
    assert "{this is not json" not in text and "not JSON" in text  # the bad row, by its error
    assert "seascape, stormy, night" in text and "A Horse and a Dog" in text


def test_cli_writes_report_and_reference_profile(catalogue, tmp_path, capsys):
    from arttag_cli.main import main

    out = tmp_path / "report"
    assert main(["audit", str(catalogue), "--out", str(out), "--encoder", "hashing", "--no-progress"]) == 0
    assert {p.name for p in out.iterdir()} == {"audit.html", "audit.json", "reference_profile.json"}
    page = _Page()
    page.feed((out / "audit.html").read_text())
    assert "overlooked" in page.sections and "learnability" in page.sections
    assert "skipped: no model bundle given" in " ".join(page.text)
    assert "14 artworks audited, 2 bad rows skipped" in capsys.readouterr().out


def test_consistency_prefilter_keeps_the_findings(catalogue):
    from arttag.quality.audit.consistency import labelling_consistency

    records, _ = load_catalogue(catalogue)
    result = labelling_consistency(records, HashingEncoder(dim=4096), progress=False,
                                   prefilter=HashingEncoder(dim=256), prefilter_threshold=0.9)
    assert result["inconsistent_groups"] == 1
    # The stormy sea is in Sketchbook B's block but has no twin there: never sent to the real encoder.
    assert result["artworks_in_blocks"] == 6 and result["artworks_compared"] == 5


def test_leader_groups_do_not_chain():
    from arttag.quality.audit.neighbours import leader_groups

    # 0~1, 1~2, 2~3: components would be {0,1,2,3}; leaders give {0,1} and {2,3}.
    pairs = [(0, 1, 0.97), (1, 2, 0.96), (2, 3, 0.99)]
    assert leader_groups(5, pairs) == [([0, 1], 0.97), ([2, 3], 0.99)]


def test_histograms_cover_every_finding_not_only_those_shown(audit_with_model):
    assert sum(audit_with_model["consistency"]["agreement_histogram"].values()) == 1
    assert audit_with_model["consistency"]["agreement_histogram"]["0.5"] == 1  # horse / horse+dog
    assert sum(audit_with_model["overlooked"]["confidence_histogram"].values()) == 1


def test_a_catalogue_of_only_bad_rows_still_gets_a_report(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": 1}\nnot json\n')
    audit = run_audit(path, HashingEncoder(), None, AuditOptions(progress=False))
    assert audit["rows"]["good"] == 0 and [b["line"] for b in audit["rows"]["bad_rows"]] == [1, 2]
    _, html_path = write_report(audit, tmp_path / "out")
    page = _Page()
    page.feed(html_path.read_text())
    assert "2 rows read, 0 good, 2 bad (skipped)." in page.text


def test_qualified_variants_in_the_same_group_are_reported_for_definition():
    from arttag.catalogue.records import CatalogueRecord
    from arttag.events import AssignedTag

    def record(artwork_id: str, *tags: tuple[str, str, str]) -> CatalogueRecord:
        return CatalogueRecord(line=int(artwork_id), artwork_id=artwork_id, metadata=ArtworkMetadata(
            title=f"work {artwork_id}", tags=[AssignedTag(id=i, label=l, group=g) for i, l, g in tags]))

    town = ("1", "townscape", "townscapes")
    distant = ("2", "townscape, distant", "townscapes")
    elsewhere = ("3", "bridge, footbridge", "features")   # its base is in another group
    bridge = ("4", "bridge", "bridges and viaducts")
    records = [record("1", town), record("2", town), record("3", distant), record("4", elsewhere, bridge)]
    result = near_duplicate_tags(records, None, progress=False)
    assert result["qualified"]["count"] == 1
    [group] = result["qualified"]["groups"]
    assert group["base"]["label"] == "townscape" and group["base"]["usage"] == 2
    assert [v["label"] for v in group["variants"]] == ["townscape, distant"]
    assert group["variants"][0]["examples"][0]["artwork_id"] == "3"
