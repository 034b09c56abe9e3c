"""The readable explanation: similar artworks once each by title, matched words marked in the record."""

from __future__ import annotations

from arttag.events import (
    ArtworkMetadata,
    Explanation,
    NeighbourEvidence,
    ScorerContribution,
    TagSuggestion,
    TagTextEvidence,
    TermEvidence,
)
from arttag.scorers.registry import SCORERS
from arttag_api.web.explain import mark, readable, scorer_relation


def _suggestion(*contributions: ScorerContribution) -> TagSuggestion:
    return TagSuggestion(tag_id="t1", label="harbour", group="places", score=0.5, confidence=0.5,
                         scorers=[c.scorer for c in contributions], already_assigned=False,
                         explanation=Explanation(summary="because", contributions=list(contributions)))


def test_mark_escapes_the_text_and_marks_words_phrases_and_stems():
    html, matched = mark("Boats & in <Dieppe> Harbours, harbour wall", ["harbour", "boats in", "ns ", "gull"])
    assert str(html) == ("<mark>Boats &amp; in</mark> &lt;Dieppe&gt; <mark>Harbours</mark>, "
                         "<mark>harbour</mark> wall")
    assert matched == ("harbour", "boats in")  # the n-gram and the absent word are left out


def test_mark_does_not_match_inside_a_word():
    html, matched = mark("Charming armchair", ["arm"])
    assert str(html) == "Charming <mark>armchair</mark>" and matched == ("arm",)


def test_readable_keeps_each_neighbour_once_at_its_best_and_marks_fields():
    artwork = ArtworkMetadata(title="Fishing Boats in Dieppe Harbour", artists=["Christopher Wood"], date="1929",
                              medium="Oil paint on canvas", description="A harbour at dusk.")
    s = _suggestion(
        ScorerContribution(scorer="knn", score=0.4, evidence=[
            NeighbourEvidence(artwork_id="9", title="Harbour at Night", similarity=0.61),
            NeighbourEvidence(artwork_id="7", title="The Quay", similarity=0.8)]),
        ScorerContribution(scorer="tfidf", score=0.3, evidence=[
            NeighbourEvidence(artwork_id="9", title="Harbour at Night", similarity=0.9),
            TermEvidence(field="title", term="harbour", weight=0.2),
            TermEvidence(field="other", term="dusk", weight=0.1),
            TermEvidence(field="embedding", term="(whole text)", weight=0.3)]),
        ScorerContribution(scorer="semantic", score=0.2, evidence=[TagTextEvidence(tag_text="harbour", similarity=0.4)]),
    )
    e = readable(s, artwork)
    assert [(x.title, x.similarity) for x in e.similar] == [("Harbour at Night", 0.9), ("The Quay", 0.8)]
    assert [(f.name, str(f.html)) for f in e.fields] == [
        ("title", "Fishing Boats in Dieppe <mark>Harbour</mark>"),
        ("description", "A harbour at <mark>dusk</mark>."),  # the record's own text, as it reads
    ]
    assert e.tag_text_similarity == 0.4 and e.summary == "because"
    assert readable(s, None).fields == []  # without the record there is nothing to mark


def test_only_words_a_reader_can_use_are_marked_each_in_the_field_it_is_in():
    artwork = ArtworkMetadata(title="Willy Lott’s House near Flatford Mill", date="1826",
                              medium="Oil paint on canvas", classification="painting")
    s = _suggestion(
        ScorerContribution(scorer="tfidf", score=0.3, evidence=[
            TermEvidence(field="title", term="house", weight=0.2),
            TermEvidence(field="title", term="lott s", weight=0.2),   # the possessive's fragment
            TermEvidence(field="title", term="s", weight=0.2),
            TermEvidence(field="title", term="near flatford", weight=0.0),  # no weight
            TermEvidence(field="title", term="illy", weight=0.2),     # a character n-gram
            TermEvidence(field="title", term="of", weight=0.2),       # a stop word
            TermEvidence(field="artists", term="by", weight=0.2),     # the byline's own word
            # as events written before evidence named the record's fields have them
            TermEvidence(field="artists", term="1826", weight=0.1),
            TermEvidence(field="medium", term="painting", weight=0.1)]),
        ScorerContribution(scorer="mention", score=0.3, evidence=[
            TermEvidence(field="title", term="mill", weight=0.6)]),   # a noun on scikit-learn's stop list
    )
    e = readable(s, artwork)
    assert [(f.name, f.words) for f in e.fields] == [
        ("title", ("house", "mill")), ("date", ("1826",)), ("classification", ("painting",))]
    assert str(e.fields[0].html) == "Willy Lott’s <mark>House</mark> near Flatford <mark>Mill</mark>"
    assert [f.label for f in e.fields] == ["Title", "Date", "Classification"]


def test_a_neighbour_only_a_group_cites_is_shown_by_its_relation_not_as_100_percent_similar():
    s = _suggestion(
        ScorerContribution(scorer="group", score=0.9, evidence=[
            NeighbourEvidence(artwork_id="1", title="Page 1", similarity=1.0),
            NeighbourEvidence(artwork_id="2", title="Page 2", similarity=1.0)]),
        ScorerContribution(scorer="knn", score=0.4, evidence=[
            NeighbourEvidence(artwork_id="2", title="Page 2", similarity=0.7),
            NeighbourEvidence(artwork_id="3", title="Another", similarity=0.6)]),
    )
    e = readable(s, None)
    # the text-similar ones first, at their similarity (page 2's likeness beats its group weight)
    assert [(x.title, x.similarity, x.relation) for x in e.similar] == [
        ("Page 2", 0.7, None), ("Another", 0.6, None), ("Page 1", 0.0, "same group")]


def test_each_relational_scorer_names_its_relation_and_other_scorers_read_as_likeness():
    cited = [ScorerContribution(scorer=name, score=0.5, evidence=[
        NeighbourEvidence(artwork_id=name, title=f"by {name}", similarity=0.9)])
        for name in ("artist", "accession", "tfidf", "fake")]
    e = readable(_suggestion(*cited), None)
    assert [(x.title, x.similarity, x.relation) for x in e.similar] == [
        ("by fake", 0.9, None), ("by tfidf", 0.9, None),  # a scorer the registry does not know is a likeness
        ("by accession", 0.0, "nearby accession number"), ("by artist", 0.0, "same artist")]
    # the relation is the scorer's own knowledge: every registered scorer declares one or none
    assert {name: scorer_relation(name) for name in SCORERS if scorer_relation(name)} == {
        "group": "same group", "artist": "same artist", "accession": "nearby accession number"}
