"""Evaluation views: new acquisitions and isolated artworks (arttag.quality.views)."""

from __future__ import annotations

from arttag.catalogue.records import CatalogueRecord
from arttag.events import ArtworkMetadata, AssignedTag
from arttag.quality.views import TrainingIndex, first_artist, split_by_acquisition, view_masks


def meta(title: str = "x", artist: str | None = "Turner, Joseph", acno: str | None = None,
         group: str | None = None, year: int | None = None) -> ArtworkMetadata:
    return ArtworkMetadata(title=title, artists=[artist] if artist else [], accession_number=acno,
                           group_title=group, acquisition_year=year,
                           tags=[AssignedTag(id="1", label="sea")])


def test_first_artist_is_normalised():
    assert first_artist(meta(artist="  Turner,   JOSEPH ")) == "turner, joseph"
    assert first_artist(meta(artist=None)) is None


def test_split_by_acquisition_leaves_out_unknown_years():
    records = [CatalogueRecord(i, str(i), meta(year=y)) for i, y in enumerate([1850, 1999, 2000, 2013, None])]
    before, after = split_by_acquisition(records, 2000)
    assert [r.artwork_id for r in before] == ["0", "1"]
    assert [r.artwork_id for r in after] == ["2", "3"]


def test_isolation_needs_no_group_and_no_same_artist_neighbour():
    training = [
        meta(acno="D12340", group="Sketchbook A"),
        meta(acno="T00100", artist="Hepworth, Barbara"),
        meta(acno="N00500", artist="Constable, John"),
    ]
    held = [
        meta(acno="D99999", group="Sketchbook A"),            # same group title: not isolated
        meta(acno="D12350"),                                  # Turner, D series, 10 away: not isolated
        meta(acno="D12351"),                                  # 11 away: isolated (artist known)
        meta(acno="T00101", artist="Turner, Joseph"),         # neighbour is another artist's: isolated
        meta(acno="N00510", artist="Constable, John"),        # same artist, 10 away: not isolated
        meta(acno="P00001", artist="Riley, Bridget"),         # artist new to training: isolated, new artist
        meta(acno=None, artist=None),                          # nothing to tie it to: isolated, no artist
        meta(acno="A00500", artist="constable,  JOHN"),       # other series: isolated; artist known (normalised)
    ]
    masks = view_masks(held, training, window=10)
    assert masks["isolated"] == [False, False, True, True, False, True, True, True]
    assert masks["isolated_new_artist"] == [False, False, False, False, False, True, False, False]


def test_any_credited_artist_counts_as_known():
    index = TrainingIndex.build([ArtworkMetadata(title="x", artists=["A", "Riley, Bridget"])])
    assert index.artist_known(meta(artist="Riley, Bridget"))
    assert not index.has_sibling(meta(artist="Riley, Bridget", acno="T00001"))


def test_rare_and_unseen_count_training_artworks_and_gold_outside_the_vocabulary():
    from arttag.catalogue.vocabulary import Tag, Vocabulary
    from arttag.model.training import held_out_gold, rare_and_unseen

    def record(i: int, *tags: str) -> CatalogueRecord:
        return CatalogueRecord(i, str(i), ArtworkMetadata(title="x", tags=[AssignedTag(id=t, label=t) for t in tags]))

    vocab = Vocabulary([Tag(t, t) for t in ("sea", "ship", "cloud", "fog")])
    training = [record(0, "sea", "sea"), record(1, "sea", "ship"), record(2, "sea"), record(3, "ship")]
    gold = held_out_gold([record(9, "fog", "harbour")], vocab)  # harbour: outside the vocabulary
    rare, unseen = rare_and_unseen(training, vocab, gold)
    # sea: 3 artworks (not rare); ship: 2 (rare, a tag repeated on one artwork counts once); cloud, fog: none
    assert rare == {vocab.index("ship")}
    assert unseen == {vocab.index("cloud"), vocab.index("fog"), min(next(iter(gold)))}
    assert rare_and_unseen(training, vocab, gold, rare_max=3)[0] == {vocab.index("sea"), vocab.index("ship")}
