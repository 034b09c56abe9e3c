"""What `arttag tail` and the demo print for a suggestion event: the artwork's title and the
reasons `arttag suggest` gives when the record is known, the event's summary otherwise; nothing cut."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from arttag.events import ArtworkCreated, ArtworkMetadata, TagSuggestionsPublished, encode_event
from arttag.kafka.artworks import CatalogueRecord, LatestArtworks
from arttag.model.readable import reason
from arttag_stream.tail import format_record, format_suggestions

LOTT = ArtworkMetadata(title="Willy Lott’s House near Flatford Mill", artists=["John Constable"], date="c.1811",
                       medium="Oil paint on canvas")


@pytest.fixture(scope="module")
def event(hashing_bundle_dir) -> TagSuggestionsPublished:
    from arttag.encoders import HashingEncoder
    from arttag.model.bundle import load_tagger

    tagger = load_tagger(hashing_bundle_dir, HashingEncoder())
    [suggestions] = tagger.suggest([LOTT])
    return TagSuggestionsPublished(
        suggestion_id="lott:2:0:m", artwork_id="lott", revision=2, content_hash="0" * 64,
        model_version=tagger.model_version, produced_at=datetime(2026, 1, 2, tzinfo=timezone.utc),
        suggestions=suggestions)


def test_with_the_record_the_title_and_the_reasons_of_arttag_suggest(event):
    text = format_suggestions(event, top=3, artwork=LOTT)
    lines = text.splitlines()
    assert lines[0] == (f"artwork lott 'Willy Lott’s House near Flatford Mill' rev 2 · model {event.model_version} "
                        f"· {len(event.suggestions)} suggestions")
    for i, tag in enumerate(event.suggestions[:3]):
        assert lines[1 + 2 * i].split() == [f"{tag.confidence:.0%}", *tag.label.split()]
        assert lines[2 + 2 * i] == "        " + reason(tag, LOTT)
    assert len(lines) == 7
    assert "carr" in lines[2] and "'s' (" not in text  # similar artworks by title; no fragment


def test_without_the_record_the_id_and_the_whole_summary(event):
    text = format_suggestions(event, top=2)
    lines = text.splitlines()
    assert lines[0].startswith("artwork lott rev 2 · model ")
    summary = event.suggestions[0].explanation.summary
    head = f"'{event.suggestions[0].label}' ({event.suggestions[0].confidence:.0%} confidence); "
    assert summary.startswith(head) and len(summary) > 150
    assert lines[2] == "        " + summary[len(head):]  # whole: the 150-character cut is gone
    assert "…" not in text


def test_a_record_read_from_the_topics_is_used_for_its_own_revision_only(event):
    catalogue = LatestArtworks()
    value = encode_event(event)
    assert "Willy Lott" not in format_record("suggestions", value, catalogue=catalogue)
    catalogue.merge("lott", CatalogueRecord(artwork_id="lott", revision=1, produced_at=None, artwork=LOTT,
                                            event_id="e1"))
    assert "Willy Lott" not in format_record("suggestions", value, catalogue=catalogue)  # an older revision
    catalogue.merge("lott", CatalogueRecord(artwork_id="lott", revision=2, produced_at=None, artwork=LOTT,
                                            event_id="e2"))
    assert format_record("suggestions", value, top=3, catalogue=catalogue) == format_suggestions(event, 3, LOTT)


@pytest.mark.kafka
def test_arttag_tail_reads_the_titles_from_the_artwork_topics(event, kafka_settings, monkeypatch, capsys):
    from arttag.kafka import make_producer
    from arttag.kafka.admin import create_topics
    from arttag.kafka.clients import flush_or_fail
    from arttag.kafka.topics import StreamTopics
    from arttag_cli.main import main

    create_topics(kafka_settings)
    topics = StreamTopics.for_prefix(kafka_settings.topic_prefix)
    producer = make_producer(kafka_settings)
    created = ArtworkCreated(artwork_id="lott", revision=2, artwork=LOTT, source="test")
    producer.produce(topics.created, key=b"lott", value=encode_event(created))
    producer.produce(topics.suggestions, key=b"lott", value=encode_event(event))
    flush_or_fail(producer)
    monkeypatch.setenv("ARTTAG_KAFKA__BOOTSTRAP_SERVERS", kafka_settings.bootstrap_servers)
    monkeypatch.setenv("ARTTAG_KAFKA__TOPIC_PREFIX", kafka_settings.topic_prefix)
    argv = ["tail", "suggestions", "--from-beginning", "--max", "1", "--timeout", "30", "--top", "2"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "artwork lott 'Willy Lott’s House near Flatford Mill' rev 2" in out
    assert "        " + reason(event.suggestions[0], LOTT) in out
    assert main([*argv, "--no-titles"]) == 0
    out = capsys.readouterr().out
    assert "artwork lott rev 2 · model" in out and "Willy Lott’s House near" not in out.splitlines()[0]
    assert main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["artwork_id"] == "lott"
