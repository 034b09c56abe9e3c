"""The error breakdown of an evaluation view (arttag.quality.errors)."""

from __future__ import annotations

from arttag.catalogue.records import CatalogueRecord
from arttag.catalogue.vocabulary import Tag, Vocabulary
from arttag.events import ArtworkMetadata, AssignedTag
from arttag.quality.errors import PlaceIndex, RankedArtwork, error_breakdown

VOCAB = Vocabulary([
    Tag("1", "Brighton", "UK cities", "places"),
    Tag("2", "England", "UK countries", "places"),
    Tag("3", "Scotland", "UK countries", "places"),
    Tag("4", "sea", "water", "nature"),
    Tag("5", "Ely", "UK cities", "places"),
    Tag("6", "boat", "transport", "objects"),
    Tag("7", "cliff", "coast", "nature"),
    Tag("8", "Brighton, West Pier", "UK cities", "places"),
])


def record(n: int, title: str, *tag_ids: str, artist: str = "Turner, Joseph") -> CatalogueRecord:
    tags = [AssignedTag(id=t, label=VOCAB.get(t).label if t in VOCAB else f"tag {t}") for t in tag_ids]
    return CatalogueRecord(n, f"a{n}", ArtworkMetadata(title=title, artists=[artist], tags=tags))


TRAINING = [record(1, "Brighton beach", "1", "2", "4"), record(2, "Loch", "3", "4")]


def test_places_are_named_by_whole_label_and_short_labels_are_ignored():
    places = PlaceIndex(VOCAB, TRAINING)
    assert places.named("Ovington near Brighton") == {0}
    assert places.named("Brightonian shells") == set()
    assert places.named("Ely cathedral") == set()  # too short a label to count as named


def test_a_place_never_carried_with_the_named_one_contradicts_it():
    places = PlaceIndex(VOCAB, TRAINING)
    named = places.named("Ovington near Brighton")
    assert places.contradicts(2, named)          # Scotland: never with Brighton in training
    assert not places.contradicts(1, named)      # England: carried with Brighton
    assert not places.contradicts(0, named)      # Brighton itself is named
    assert not places.contradicts(3, named)      # sea is no place
    assert not places.contradicts(2, set())      # nothing named: nothing to contradict
    assert not places.contradicts(7, named)      # Brighton, West Pier: a part of Brighton


def test_every_true_tag_ends_in_one_place_and_wrong_suggestions_are_counted():
    held = [
        # true: Brighton (2nd), sea (6th), boat (never proposed), "99" (outside the vocabulary);
        # wrong in the top five: Scotland and Ely (never with Brighton), England (carried with it), cliff
        RankedArtwork(record(3, "Ovington near Brighton", "1", "4", "6", "99"), [2, 0, 1, 4, 6, 3]),
        RankedArtwork(record(4, "Waves", "4", artist="Hepworth, Barbara"), [3, 1]),  # nothing named
    ]
    out = error_breakdown(held, VOCAB, TRAINING)
    assert out["true_pairs"] == 5
    assert out["true_pairs_by_fate"] == {"in_top_5": 2, "ranked_below_5": 1, "not_a_candidate": 1,
                                         "outside_vocabulary": 1}
    assert abs(sum(out["true_share_by_fate"].values()) - 1.0) < 1e-12
    assert out["top_5_wrong"] == 5
    assert out["place_contradictions"] == 2
    assert out["place_contradiction_tags"] == [("Scotland", 1), ("Ely", 1)]
    assert out["place_contradictions_share_of_wrong"] == 2 / 5
    assert out["place_contradiction_examples"][0]["named"] == ["Brighton"]
    assert out["by_area"]["places"]["in_top_5"] == 1
    assert out["by_area"]["places"]["top_5_wrong"] == 4
    assert out["by_area"]["objects"]["not_a_candidate"] == 1
    assert out["by_area"]["(outside the vocabulary)"]["outside_vocabulary"] == 1
    assert out["never_proposed_tags"] == [("boat", 1)]
    assert out["outside_vocabulary_tags"] == [("tag 99", 1)]
    assert out["series"]["top_10_artists_share_of_true_pairs"] == 1.0
    assert out["series"]["top_10_artists"][0] == {"artist": "Turner, Joseph", "artworks": 1, "true_pairs": 4}
