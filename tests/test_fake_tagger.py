"""The library's fake tagger: the contracts it stands in for, its rules, filters and failure."""

from __future__ import annotations

import pytest
from arttag.catalogue.vocabulary import Tag
from arttag.errors import ModelError
from arttag.events import ArtworkMetadata, AssignedTag
from arttag.model.fake_tagger import FakeTagger, TitleRule
from arttag.model.tagger import CatalogueTagger, SuggestOptions

HORSE = Tag("1", "horse", "animals: mammals")
RIVER = Tag("9", "river", "rivers")
RIVER_BANK = Tag("12", "river bank", "rivers")
RULES = [TitleRule("River", RIVER, 0.8), TitleRule("Horse", HORSE, 0.9), TitleRule("Bank", RIVER_BANK, 0.3)]


def test_it_fulfils_both_contracts_the_api_needs():
    tagger = FakeTagger(RULES, model_version="fake-7")
    assert isinstance(tagger, CatalogueTagger)
    assert tagger.model_version == "fake-7" and [t.id for t in tagger.vocabulary] == ["9", "1", "12"]


def test_rules_suggest_most_confident_first_with_an_explanation():
    tagger = FakeTagger(RULES)
    [[horse, river], []] = tagger.suggest([ArtworkMetadata(title="Horse by a River"), ArtworkMetadata(title="Sky")])
    assert (horse.tag_id, horse.confidence, river.tag_id, river.confidence) == ("1", 0.9, "9", 0.8)
    assert horse.explanation.summary == "title word 'Horse'"
    [contribution] = horse.explanation.contributions
    assert contribution.scorer == "fake" and contribution.evidence[0].term == "Horse"
    assert tagger.calls == [2]


def test_without_rules_it_suggests_the_first_title_word():
    [[boat]] = FakeTagger(confidence=0.7).suggest([ArtworkMetadata(title="Boat at sea")])
    assert (boat.tag_id, boat.label, boat.confidence) == ("boat", "boat", 0.7)


def test_options_filter_as_in_a_bundle():
    tagger = FakeTagger(RULES)
    artwork = ArtworkMetadata(title="Horse, River Bank", tags=[AssignedTag(id="9", label="river")])

    def ids(**options) -> list[str]:
        return [s.tag_id for s in tagger.suggest([artwork], SuggestOptions(**options))[0]]

    assert ids() == ["1", "9", "12"]
    assert [s.already_assigned for s in tagger.suggest([artwork])[0]] == [False, True, False]
    assert ids(limit=1) == ["1"] and ids(min_confidence=0.5) == ["1", "9"] and ids(only_new=True) == ["1", "12"]
    assert ids(exclude_groups=["rivers"]) == ["1"] and ids(include_tags=["12"]) == ["12"]


def test_a_title_with_the_failure_word_fails_the_whole_call():
    tagger = FakeTagger(fail_on="POISON")
    with pytest.raises(ModelError, match="POISON"):
        tagger.suggest([ArtworkMetadata(title="Boat"), ArtworkMetadata(title="POISON pill")])
    assert tagger.calls == [2] and len(tagger.suggest([ArtworkMetadata(title="Boat")])) == 1


def test_the_failure_can_be_one_no_except_exception_catches():
    class ProcessDied(BaseException):
        pass

    tagger = FakeTagger(fail_on="CRASH", failure=ProcessDied)
    with pytest.raises(ProcessDied, match="CRASH"):
        try:
            tagger.suggest([ArtworkMetadata(title="CRASH here")])
        except Exception:  # noqa: BLE001 - what the worker's error handling would catch
            pytest.fail("the failure was caught as an Exception")


def test_tag_search_ranks_by_shared_words():
    tagger = FakeTagger(RULES)
    assert [(t.id, s) for t, s in tagger.search_tags_semantic("River banks")] == [("9", 0.5), ("12", 0.5)]
    assert [(t.id, s) for t, s in tagger.search_tags_semantic("river bank", limit=1)] == [("12", 1.0)]
    assert tagger.search_tags_semantic("  ") == []
