from __future__ import annotations

from arttag.catalogue.records import load_catalogue
from arttag.catalogue.vocabulary import Tag, Vocabulary


def test_from_sample_catalogue(sample_catalogue):
    records, _ = load_catalogue(sample_catalogue)
    vocab = Vocabulary.from_records(records)
    assert len(vocab) > 1000
    harbour = next(t for t in vocab if t.label == "harbour")
    assert harbour.group == "seascapes and coasts" and harbour.area == "nature"
    assert harbour.usage == sum(1 for r in records for t in r.metadata.tags if t.id == harbour.id)
    assert vocab.get(harbour.id) == harbour and vocab.tags[vocab.index(harbour.id)] == harbour


def test_tag_text_is_enriched_with_group():
    assert Tag("1", "bridge", "bridges and viaducts").text == "bridge (bridges and viaducts)"
    assert Tag("2", "Dieppe - non-specific", "cities").text == "Dieppe (cities)"


def test_csv_round_trip_and_prefix_search(tmp_path):
    vocab = Vocabulary([Tag("1", "townscape", "townscapes", "architecture", 9),
                        Tag("2", "townscape, distant", "townscapes", "architecture", 3),
                        Tag("3", "old town", "townscapes", None, 50)])
    path = tmp_path / "v.csv"
    vocab.to_csv(path)
    assert Vocabulary.from_csv(path).tags == vocab.tags
    assert [t.id for t in vocab.search_prefix("town")] == ["1", "2", "3"]
    assert vocab.search_prefix("") == []


def test_skos_leaves_become_tags(tmp_path):
    path = tmp_path / "v.rdf"
    path.write_text("""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:skos="http://www.w3.org/2004/02/skos/core#">
  <skos:Concept rdf:about="urn:a"><skos:prefLabel xml:lang="en">nature</skos:prefLabel></skos:Concept>
  <skos:Concept rdf:about="urn:g"><skos:prefLabel xml:lang="en">trees</skos:prefLabel><skos:broader rdf:resource="urn:a"/></skos:Concept>
  <skos:Concept rdf:about="urn:t"><skos:prefLabel xml:lang="fr">chêne</skos:prefLabel><skos:prefLabel xml:lang="en">oak</skos:prefLabel><skos:broader rdf:resource="urn:g"/></skos:Concept>
</rdf:RDF>""")
    vocab = Vocabulary.from_skos(path)
    assert [(t.id, t.label, t.group, t.area) for t in vocab] == [("urn:t", "oak", "trees", "nature")]
