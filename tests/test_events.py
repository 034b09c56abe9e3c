from __future__ import annotations

import json

import pytest
from arttag.errors import EventDecodeError
from arttag.events import (
    ArtworkCreated,
    ArtworkMetadata,
    ArtworkUpdated,
    DeadLetter,
    Explanation,
    TagSuggestion,
    TagSuggestionsPublished,
    answer_digest,
    decode_artwork_event,
    encode_event,
)


def _created(**over) -> dict:
    event = {
        "event_type": "artwork.created",
        "artwork_id": 3,
        "revision": 1,
        "artwork": {"title": "A Fishing Boat in Dieppe Harbour", "artists": ["Christopher Wood"],
                    "tags": [{"id": 1518, "label": "harbour", "group": "seascapes and coasts"}]},
    }
    event.update(over)
    return event


def test_round_trip_through_bytes():
    event = ArtworkCreated.model_validate(_created())
    decoded = decode_artwork_event(encode_event(event))
    assert isinstance(decoded, ArtworkCreated)
    assert decoded == event
    assert decoded.artwork_id == "3" and decoded.artwork.tags[0].id == "1518"


def test_discriminates_updated():
    raw = json.dumps(_created(event_type="artwork.updated", revision=2)).encode()
    assert isinstance(decode_artwork_event(raw), ArtworkUpdated)


def test_consumed_events_tolerate_unknown_fields():
    raw = json.dumps(_created(new_field="x", artwork={"title": "T", "colour": "red"})).encode()
    assert decode_artwork_event(raw).artwork.title == "T"


@pytest.mark.parametrize(
    ("raw", "reason", "needle"),
    [
        (b"\xff\xfe\x00garbage", "undecodable", "not UTF-8"),
        (b"{not json", "invalid_json", "not JSON"),
        (b"[1, 2]", "schema", "not an object"),
        (json.dumps(_created(artwork={"artists": []})).encode(), "schema", "artwork.title"),
        (json.dumps(_created(revision=-1)).encode(), "schema", "revision"),
        (json.dumps(_created(event_type="artwork.deleted")).encode(), "schema", "event_type"),
        (None, "empty", "empty"),
    ],
)
def test_bad_bytes_give_a_clear_error_naming_the_problem(raw, reason, needle):
    with pytest.raises(EventDecodeError) as info:
        decode_artwork_event(raw)
    assert info.value.context["reason"] == reason
    assert needle in str(info.value)


def test_produced_events_are_strict_and_frozen():
    with pytest.raises(Exception):
        TagSuggestionsPublished(
            suggestion_id="x", artwork_id="1", revision=1, content_hash="h",
            model_version="m", suggestions=[], surprise=True,
        )
    meta = ArtworkMetadata(title="T")
    with pytest.raises(Exception):
        meta.title = "changed"


def test_dead_letter_keeps_the_original_bytes():
    raw = b"\x00\x01 not an event"
    dl = DeadLetter(original_value_b64=DeadLetter.encode_bytes(raw), topic="t", partition=1,
                    offset=7, error="bad", error_type="EventDecodeError", consumer="c")
    assert DeadLetter.model_validate_json(encode_event(dl)).original_value() == raw


def test_suggestion_id_is_deterministic_and_names_revision_content_model_and_answer():
    def make_id(artwork_id, revision, chash, model, answer=()):
        return TagSuggestionsPublished.make_id(artwork_id, revision, chash, model, list(answer))
    one = [TagSuggestion(tag_id="sea", label="sea", score=0.5, confidence=0.5, scorers=["s"],
                         already_assigned=False, explanation=Explanation(summary="s", contributions=[]))]
    assert make_id("3", 2, "ab" * 32, "m1") == make_id("3", 2, "ab" * 32, "m1") \
        == f"3:2:{'ab' * 8}:m1:{answer_digest([])}"
    assert len({make_id("3", 2, "ab" * 32, "m1"), make_id("3", 2, "ab" * 32, "m2"),
                make_id("3", 2, "cd" * 32, "m1"), make_id("3", 3, "ab" * 32, "m1"),
                make_id("3", 2, "ab" * 32, "m1", one)}) == 5
