"""arttag reading back what it produced: every reader ignores a field a newer writer of the same
version adds (an allowed change, docs/topics.md), and the schemas read back are the ones
``arttag.schema_compat.READ_BACK`` holds to both rule sets.

The produced models stay strict (``extra="forbid"``) for the producers; readers decode with
``decode_event(..., ignore_unknown=True)`` or ``model_validate_json(..., extra="ignore")``.
"""

from __future__ import annotations

import ast
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from arttag.curation.feedback import decode_feedback
from arttag.curation.labels import read_decisions_file
from arttag.curation.learning import DecisionsFollower, LatestDecisions, decode_decisions_record
from arttag.errors import EventDecodeError
from arttag.events import (
    SCHEMA_MODELS,
    DeadLetter,
    Explanation,
    FeedbackActor,
    ScorerContribution,
    TagDecision,
    TagDecisionsChanged,
    TagFeedbackGiven,
    TagSuggestion,
    TagSuggestionsPublished,
    decode_event,
    encode_event,
    neighbour_evidence,
)
from arttag.kafka import make_producer
from arttag.kafka.admin import create_topics
from arttag.kafka.clients import flush_or_fail
from arttag.kafka.topics import StreamTopics
from arttag.schema_compat import READ_BACK
from arttag.settings import StreamSettings
from arttag_api.latest_view import LatestSuggestionsView, LatestViewFollower
from arttag_api.latest_view import _decode as decode_latest
from arttag_stream.replay import replay_dead_letters
from arttag_stream.tail import format_record

REPO = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def suggestions(artwork_id: str = "A1", revision: int = 3) -> TagSuggestionsPublished:
    contribution = ScorerContribution(scorer="knn", score=0.8, rank=1,
                                      evidence=[neighbour_evidence("B2", "Boats", 0.9)])
    tag = TagSuggestion(tag_id="270", label="boat", score=0.8, confidence=0.7, scorers=["knn"],
                        already_assigned=False,
                        explanation=Explanation(summary="like B2", contributions=[contribution]))
    return TagSuggestionsPublished(
        suggestion_id=TagSuggestionsPublished.make_id(artwork_id, revision, "h" * 64, "m1", [tag]),
        artwork_id=artwork_id, revision=revision, content_hash="h" * 64, model_version="m1",
        produced_at=T0, suggestions=[tag])


def decisions(artwork_id: str = "A1") -> TagDecisionsChanged:
    decision = TagDecision(tag_id="270", decided_by="curator", curator_id="cur-1", votes_for=0,
                           votes_against=0, event_id="e1", decided_at=T0)
    return TagDecisionsChanged(decisions_id="d" * 32, artwork_id=artwork_id, accepted=[decision],
                               rejected=[], proposed=[])


def feedback() -> TagFeedbackGiven:
    return TagFeedbackGiven(artwork_id="A1", tag_id="270", action="accepted",
                            actor=FeedbackActor(kind="curator", id="cur-1"), occurred_at=T0,
                            event_id="f1")


def dead_letter(topic: str = "artworks.created.v1") -> DeadLetter:
    return DeadLetter.for_message(b"{", b"A1", topic=topic, partition=0, offset=7,
                                  error="message is not JSON", error_type="invalid_json",
                                  consumer="test")


def with_new_fields(event, *nested: tuple) -> bytes:
    """The event as a newer writer of the same version might write it: a new optional field at
    the top, and one inside each object at the ``nested`` paths (keys and list indexes)."""
    data = json.loads(encode_event(event))
    data["added_later"] = {"any": ["json"]}
    for path in nested:
        node = data
        for step in path:
            node = node[step]
        node["added_later"] = 1
    return json.dumps(data).encode()


SUGGESTIONS_NESTED = (("suggestions", 0), ("suggestions", 0, "explanation"),
                      ("suggestions", 0, "explanation", "contributions", 0),
                      ("suggestions", 0, "explanation", "contributions", 0, "evidence", 0))


def test_a_new_field_is_still_refused_where_nothing_asks_to_ignore_it():
    """The baseline the readers below differ from: the models stay strict for producers."""
    raw = with_new_fields(suggestions())
    with pytest.raises(EventDecodeError, match="added_later"):
        decode_event(raw, TagSuggestionsPublished)
    with pytest.raises(ValueError):
        TagSuggestionsPublished(**{**suggestions().model_dump(), "added_later": 1})


# -- each reader, one record with new fields --------------------------------------------------------


def test_the_api_latest_view_reads_a_record_with_new_fields():
    key, event = decode_latest(with_new_fields(suggestions(), *SUGGESTIONS_NESTED))
    assert key == "A1" and event == suggestions()


def test_the_decisions_follower_reads_a_record_with_new_fields():
    key, record = decode_decisions_record(with_new_fields(decisions(), ("accepted", 0)))
    assert key == "A1" and record.decisions == decisions()


def test_the_decisions_file_reader_reads_a_record_with_new_fields(tmp_path):
    path = tmp_path / "decisions.jsonl"
    path.write_bytes(with_new_fields(decisions(), ("accepted", 0)) + b"\n")
    found, bad = read_decisions_file(path)
    assert bad == 0 and found == {"A1": decisions()}


def test_the_feedback_reader_reads_a_record_with_new_fields():
    """The curation fold's and the stream worker's data-quality monitor's reader."""
    event = decode_feedback(with_new_fields(feedback(), ("actor",)))
    assert event.model_dump() == feedback().model_dump()


def test_tail_and_demo_show_records_with_new_fields():
    shown = format_record("suggestions", with_new_fields(suggestions(), *SUGGESTIONS_NESTED))
    assert shown.startswith("artwork A1 rev 3") and "boat" in shown
    shown = format_record("dead-letters", with_new_fields(dead_letter()))
    assert shown.startswith("dead letter from artworks.created.v1[0]@7 (invalid_json)")


@pytest.mark.kafka
def test_followers_and_the_dead_letter_replay_take_records_with_new_fields(kafka_settings):
    """On the broker: the compacted followers skip a record that does not decode, so a reader
    that refused a new field would silently lose the artwork; the dead-letter replay would count
    the dead letter unreadable and never re-submit it."""
    create_topics(kafka_settings)
    topics = StreamTopics.for_prefix(kafka_settings.topic_prefix)
    decisions_topic = f"{kafka_settings.topic_prefix}tags.decisions.v1"
    p = make_producer(kafka_settings)
    p.produce(topics.latest, key=b"A1", value=with_new_fields(suggestions(), *SUGGESTIONS_NESTED))
    p.produce(decisions_topic, key=b"A1", value=with_new_fields(decisions(), ("accepted", 0)))
    p.produce(topics.dead_letters, key=b"A1", value=with_new_fields(dead_letter(topics.created)))
    flush_or_fail(p)

    view, table = LatestSuggestionsView(), LatestDecisions()
    latest = LatestViewFollower(kafka_settings, view, poll_s=0.1)
    decided = DecisionsFollower(kafka_settings, table, poll_s=0.1)
    try:
        assert latest.load(timeout_s=60) == 1 and decided.load(timeout_s=60) == 1
    finally:
        latest.stop()
        decided.stop()
    assert view.get("A1") == suggestions()
    assert table.decisions("A1") == decisions()

    settings = StreamSettings(kafka=kafka_settings, consumer_group=f"g-{uuid.uuid4().hex[:6]}")
    report = replay_dead_letters(settings, group=f"dl-{uuid.uuid4().hex[:6]}", dry_run=True)
    assert report.unreadable == 0 and report.resubmitted == 1
    assert report.by_topic == {topics.created: 1}


# -- which schemas arttag reads back, from the code ---------------------------------------------------

PRODUCED = {model.__name__: name for name, model in SCHEMA_MODELS.items()
            if model.model_config.get("extra") == "forbid"}


def _keyword(call: ast.Call, name: str) -> object:
    for kw in call.keywords:
        if kw.arg == name and isinstance(kw.value, ast.Constant):
            return kw.value.value
    return None


def reads_of_produced_models() -> list[tuple[str, str, bool]]:
    """(where, schema, tolerant) for every decoding of a produced model in shared/ and services/:
    ``decode_event(raw, Model)`` and ``Model.model_validate_json(...)`` / ``model_validate``,
    where Model is a produced model or a class derived from one (``FeedbackRead``)."""
    found = []
    for path in sorted([*(REPO / "shared").rglob("*.py"), *(REPO / "services").rglob("*.py")]):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        derived = {node.name: base.id for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
                   for base in node.bases if isinstance(base, ast.Name) and base.id in PRODUCED}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            if isinstance(f, ast.Name) and f.id == "decode_event" and len(node.args) >= 2 \
                    and isinstance(node.args[1], ast.Name):
                model, tolerant = node.args[1].id, _keyword(node, "ignore_unknown") is True
            elif isinstance(f, ast.Attribute) and f.attr in ("model_validate_json", "model_validate") \
                    and isinstance(f.value, ast.Name):
                model, tolerant = f.value.id, _keyword(node, "extra") == "ignore"
            else:
                continue
            model = derived.get(model, model)
            if model in PRODUCED:
                found.append((f"{path.relative_to(REPO)}:{node.lineno}", PRODUCED[model], tolerant))
    return found


def test_every_reader_of_a_produced_schema_ignores_unknown_fields():
    reads = reads_of_produced_models()
    assert len(reads) >= 6, reads  # the readers exist: the scan still recognises them
    strict = [f"{where} ({schema})" for where, schema, tolerant in reads if not tolerant]
    assert not strict, ("these decode a produced event strictly; a newer writer's optional field would "
                        "make them skip or dead-letter it: pass ignore_unknown=True (decode_event) or "
                        "extra=\"ignore\" (model_validate_json):\n  " + "\n  ".join(strict))


def test_the_schemas_read_back_are_those_checked_in_both_directions():
    read = {schema for _, schema, _ in reads_of_produced_models()}
    assert read - set(READ_BACK) == set(), (
        f"arttag reads back {sorted(read - set(READ_BACK))} but arttag.schema_compat.READ_BACK does "
        "not list them: their old records would not be protected by the consumed rules")
    assert set(READ_BACK) - read == set(), (
        f"READ_BACK lists {sorted(set(READ_BACK) - read)}, which no code reads back: remove them")
