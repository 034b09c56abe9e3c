"""A thesaurus for training: SKOS in Turtle and RDF/XML through rdflib, and `arttag train --vocabulary`."""

from __future__ import annotations

import pytest
from arttag.catalogue.vocabulary import Tag, Vocabulary, load_vocabulary
from arttag.errors import ArttagError

TURTLE = """@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix ex: <http://example.org/subjects/> .
ex:nature a skos:Concept ; skos:prefLabel "nature"@en ; skos:narrower ex:trees .
ex:trees a skos:Concept ; skos:prefLabel "trees"@en .
ex:oak a skos:Concept ; skos:prefLabel "chêne"@fr, "oak"@en ; skos:broader ex:trees .
ex:beech a skos:Concept ; skos:prefLabel "beech" ; skos:notation "1234" ; skos:broader ex:trees .
"""

RDF_XML = """<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:skos="http://www.w3.org/2004/02/skos/core#">
  <skos:Concept rdf:about="urn:a"><skos:prefLabel xml:lang="en">nature</skos:prefLabel></skos:Concept>
  <skos:Concept rdf:about="urn:g"><skos:prefLabel xml:lang="en">trees</skos:prefLabel><skos:broader rdf:resource="urn:a"/></skos:Concept>
  <rdf:Description rdf:about="urn:t">
    <rdf:type rdf:resource="http://www.w3.org/2004/02/skos/core#Concept"/>
    <skos:prefLabel xml:lang="de">Eiche</skos:prefLabel><skos:prefLabel xml:lang="en">oak</skos:prefLabel>
    <skos:broader rdf:resource="urn:g"/>
  </rdf:Description>
</rdf:RDF>"""


def test_turtle_leaves_with_groups_areas_and_notations(tmp_path):
    path = tmp_path / "thesaurus.ttl"
    path.write_text(TURTLE, encoding="utf-8")
    vocab = load_vocabulary(path)
    # narrower (on the area) and broader (on the tags) both build the hierarchy; a notation is the id
    assert [(t.id, t.label, t.group, t.area) for t in vocab] == [
        ("1234", "beech", "trees", "nature"),
        ("http://example.org/subjects/oak", "oak", "trees", "nature"),
    ]


def test_rdf_xml_as_written_by_other_tools(tmp_path):
    path = tmp_path / "thesaurus.rdf"
    path.write_text(RDF_XML, encoding="utf-8")
    assert [(t.id, t.label, t.group, t.area) for t in Vocabulary.from_skos(path)] == [
        ("urn:t", "oak", "trees", "nature")]


def test_unreadable_or_empty_thesauri_are_clear_errors(tmp_path):
    bad = tmp_path / "broken.ttl"
    bad.write_text("@prefix skos: <http://www.w3.org/2004/02/skos/core#> .\nthis is not turtle")
    with pytest.raises(ArttagError, match="not readable as SKOS"):
        load_vocabulary(bad)
    empty = tmp_path / "empty.ttl"
    empty.write_text("@prefix skos: <http://www.w3.org/2004/02/skos/core#> .\n")
    with pytest.raises(ArttagError, match="no SKOS concept"):
        load_vocabulary(empty)
    with pytest.raises(ArttagError, match="not found"):
        load_vocabulary(tmp_path / "missing.ttl")
    csv = tmp_path / "v.csv"
    Vocabulary([Tag("1", "oak", "trees")]).to_csv(csv)
    assert load_vocabulary(csv).tags[0].label == "oak"


def test_training_with_a_thesaurus_makes_an_uncarried_term_suggestable(tmp_path, sample_catalogue, capsys):
    from arttag.encoders import HashingEncoder
    from arttag.events import ArtworkMetadata
    from arttag.model.bundle import load_tagger
    from arttag.model.tagger import SuggestOptions
    from arttag_cli.main import main

    thesaurus = tmp_path / "extra.ttl"
    thesaurus.write_text("""@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix t: <http://example.org/tate/> .
t:places a skos:Concept ; skos:prefLabel "places"@en .
t:lighthouses a skos:Concept ; skos:prefLabel "lighthouses"@en ; skos:broader t:places .
t:x a skos:Concept ; skos:prefLabel "Eddystone Lighthouse"@en ; skos:notation "T-900001" ; skos:broader t:lighthouses .
""", encoding="utf-8")
    out = tmp_path / "bundle"
    assert main(["train", str(sample_catalogue), "--out", str(out), "--encoder", "hashing", "--no-evaluate",
                 "--vocabulary", str(thesaurus), "--embedding-cache", str(tmp_path / "emb")]) == 0
    tagger = load_tagger(out, HashingEncoder())
    term = tagger.vocabulary.get("T-900001")
    assert term is not None and term.usage == 0 and term.group == "lighthouses"
    assert tagger.manifest["training"]["thesaurus"]["terms_no_artwork_carries"] == 1
    # suggestable: proposed and ranked (how high depends on the sample's re-ranker, not on the thesaurus)
    [suggestions] = tagger.suggest([ArtworkMetadata(title="The Eddystone Lighthouse in a Storm")], SuggestOptions(limit=20))
    assert "T-900001" in [s.tag_id for s in suggestions]
