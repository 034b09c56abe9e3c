"""What people read of an explanation: each cited word in the record's field it is in, and
only words a reader can use in the summary and the reasons, while the events keep every piece
of evidence."""

from __future__ import annotations

import re

import pytest
from arttag.catalogue.record_words import RecordWords
from arttag.catalogue.text import build_text
from arttag.events import ArtworkMetadata, TermEvidence
from arttag.model.readable import readable_term, short_title

HORSE = ArtworkMetadata(title="Study of a Horse", date="1826", medium="Graphite on paper")
LOTT = ArtworkMetadata(title="Willy Lott’s House near Flatford Mill", artists=["John Constable"], date="c.1811",
                       medium="Oil paint on canvas", classification="painting",
                       movements=["Romanticism"], inscription="signed J.C.", description="Two boats in harbours")


@pytest.mark.parametrize("field, term, source", [
    ("artists", "1826", "date"),       # the byline "by 1826" holds the date
    ("artists", "by", "artists"),      # the byline's own word stays where the model read it
    ("artists", "by 1826", "artists"),
])
def test_a_date_word_is_the_dates_not_the_artists(field, term, source):
    assert RecordWords(HORSE).source(field, term) == source


@pytest.mark.parametrize("field, term, source", [
    ("artists", "constable", "artists"),
    ("artists", "john constable", "artists"),
    ("artists", "1811", "date"),
    ("artists", "constable 1811", "artists"),   # a phrase across two fields stays in the byline
    ("medium", "canvas", "medium"),
    ("medium", "painting", "classification"),
    ("movements", "romanticism", "movements"),  # the TF-IDF block of movements, inscription, description
    ("movements", "signed", "inscription"),
    ("movements", "boats", "description"),
    ("other", "harbour", "description"),        # the mention scorer's stem of "harbours"
    ("title", "house", "title"),                # a field the model reads alone is left as it is
])
def test_merged_fields_are_split_by_the_record(field, term, source):
    assert RecordWords(LOTT).source(field, term) == source


def test_the_models_text_is_not_changed_by_where_words_are_shown():
    # the model and the events' content hash read the byline merged, as before
    assert build_text(HORSE) == "Study of a Horse. by 1826. Graphite on paper"


@pytest.mark.parametrize("term, field, weight, ok", [
    ("house", "title", 0.2, True),
    ("flatford mill", "title", 0.2, True),
    ("mill", "title", 0.2, True),            # scikit-learn lists it as a stop word; it is a subject
    ("s", "title", 0.2, False),              # the possessive of "Lott’s"
    ("lott s", "title", 0.2, False),
    ("s house", "title", 0.2, False),
    ("ll", "title", 0.2, False),
    ("illy", "title", 0.2, False),           # a character n-gram of "Willy"
    (" hou", "title", 0.2, False),
    ("near", "title", 0.0, False),           # no weight
    ("of", "title", 0.2, False),
    ("house near", "title", 0.2, True),
    ("1811", "date", 0.2, True),
    ("1811", "artists", 0.2, False),         # not a word of the artists
    ("harbour", "description", 0.2, True),   # a singular cited for a plural of the record
    ("(whole text)", "text embedding", 0.2, False),
])
def test_readable_terms(term, field, weight, ok):
    assert readable_term(TermEvidence(field=field, term=term, weight=weight), LOTT) is ok


def test_long_titles_are_whole_up_to_a_generous_limit_then_cut_at_a_word():
    title = "Claudian Harbour Scene: Study for ‘Dido Directing the Equipment of the Fleet’"
    assert short_title(title) == title
    long = "A View of the Thames " * 10
    cut = short_title(long)
    assert cut.endswith(" …") and long.startswith(cut[:-2]) and 66 < len(cut) <= 102
    assert long[len(cut) - 2] == " "  # cut where a word ends


# -- the summary the model writes -------------------------------------------------------------

_QUOTED = re.compile(r"'([^']*)' \(([a-z_ ]+)\)")


@pytest.fixture(scope="module")
def explained(hashing_bundle_dir, sample_catalogue):
    from arttag.catalogue.records import iter_catalogue
    from arttag.encoders import HashingEncoder
    from arttag.model.bundle import load_tagger

    tagger = load_tagger(hashing_bundle_dir, HashingEncoder())
    metas = [HORSE, LOTT] + [r.metadata for r, _ in zip(iter_catalogue(sample_catalogue), range(60))]
    return list(zip(metas, tagger.suggest(metas)))


def test_summaries_cite_only_readable_words_in_their_own_fields_and_events_keep_all(explained):
    quoted = hidden = moved = 0
    for meta, suggestions in explained:
        record = RecordWords(meta)
        for s in suggestions:
            for phrase in s.explanation.summary.split("; "):
                cited = _QUOTED.findall(phrase)
                assert len(cited) == len(set(cited)), phrase  # each word once
                for term, field in cited:
                    quoted += 1
                    assert readable_term(TermEvidence(field=field, term=term, weight=1.0), record), (term, field)
            for c in s.explanation.contributions:
                for e in c.evidence:
                    if e.kind != "term":
                        continue
                    # the event names the record's field whenever one of the merged fields holds the word
                    assert record.source(e.field, e.term) == e.field, (e.field, e.term)
                    moved += e.field in ("date", "classification", "description", "inscription")
                    hidden += not readable_term(e, record)
    assert quoted > 100
    # what the summary leaves out is still in the events' evidence
    assert hidden > 50 and moved > 0


def test_an_artwork_without_artists_gets_no_by_in_its_summary(explained):
    meta, suggestions = explained[0]
    assert meta is HORSE and suggestions
    summaries = " ".join(s.explanation.summary for s in suggestions)
    assert "'by'" not in summaries and "(artists)" not in summaries
    assert "'1826' (date)" in summaries
    assert not re.search(r"'(of|a|of a| \w+|\w+ )' ", summaries)
    evidence = [(e.field, e.term) for s in suggestions for c in s.explanation.contributions
                for e in c.evidence if e.kind == "term"]
    assert ("date", "1826") in evidence and ("artists", "1826") not in evidence
