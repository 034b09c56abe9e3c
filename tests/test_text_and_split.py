from __future__ import annotations

from arttag.catalogue.split import bucket, split_of
from arttag.catalogue.text import build_text, content_hash
from arttag.events import ArtworkMetadata, AssignedTag


def test_build_text_orders_fields_and_drops_empty_ones():
    meta = ArtworkMetadata(title="  Town on   Hill. ", artists=["J.M.W. Turner", ""], date="1829",
                           medium="Graphite on paper", classification="", group_title="Sketchbook",
                           movements=[], inscription="  ", dimensions="10 x 20 mm")
    assert build_text(meta) == "Town on Hill. Sketchbook. by J.M.W. Turner, 1829. Graphite on paper"


def test_build_text_uses_year_when_date_missing_and_handles_unicode():
    meta = ArtworkMetadata(title="Café à Montmartre", year=1901, movements=["Fauvism"])
    assert build_text(meta) == "Café à Montmartre. by 1901. movements: Fauvism"


def test_content_hash_ignores_dimensions_but_not_title_or_tags():
    a = ArtworkMetadata(title="Hill", dimensions="1 x 1 mm")
    b = ArtworkMetadata(title="Hill", dimensions="2 x 2 mm")
    c = ArtworkMetadata(title="Hills")
    d = ArtworkMetadata(title="Hill", tags=[AssignedTag(id="1")])
    assert content_hash(a) == content_hash(b)
    assert content_hash(a) != content_hash(c)
    assert content_hash(a) != content_hash(d)


def test_split_is_deterministic_and_roughly_proportional():
    ids = [str(i) for i in range(20000)]
    assert [split_of(i) for i in ids[:50]] == [split_of(i) for i in ids[:50]]
    counts = {s: sum(1 for i in ids if split_of(i) == s) for s in ("train", "rerank", "dev")}
    assert 0.08 < counts["dev"] / len(ids) < 0.12
    assert 0.12 < counts["rerank"] / len(ids) < 0.18
    assert all(0 <= bucket(i) < 100 for i in ids[:100])
