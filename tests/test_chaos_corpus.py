"""The chaos benchmark's poison corpus through the worker's processing path, without Kafka.

bench/chaos.py interleaves these cases with valid events on a real broker; this runs the same
bytes through what the worker does with a batch (crash journal, processing with the real
tagger of a hashing bundle, the sink's two waves) and checks each case's ``expect`` on what
the sink received, so a regression shows here before a 20,000-event run.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from arttag import limits
from arttag.catalogue.records import iter_catalogue
from arttag.events import ArtworkCreated, DeadLetter, encode_event
from arttag.kafka.sink import InMemorySuggestionSink
from arttag.kafka.topics import StreamTopics
from arttag_stream.attempts import AttemptJournal, CrashGuard
from arttag_stream.pipeline import tag_and_publish
from arttag_stream.processing import BatchProcessor, RawMessage, StateStore, record_size

REPO = Path(__file__).resolve().parents[1]


def _corpus():
    spec = importlib.util.spec_from_file_location("arttag_bench_chaos_corpus", REPO / "bench" / "chaos_corpus.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.build_corpus()


@pytest.fixture(scope="module")
def outcome(hashing_bundle_dir, sample_catalogue, tmp_path_factory):
    """Every case once, each followed by a valid event, in one batch; what the sink received."""
    from arttag.model.bundle import load_tagger

    topics = StreamTopics.for_prefix("")
    cases = _corpus()
    valid = []
    for record in iter_catalogue(sample_catalogue):
        valid.append(encode_event(ArtworkCreated(artwork_id=record.artwork_id, revision=1,
                                                 artwork=record.metadata)))
        if len(valid) == len(cases):
            break
    messages, case_at, valid_at = [], {}, []
    for i, (case, event) in enumerate(zip(cases, valid)):
        topic = topics.created if case.kind == "created" else topics.updated
        messages.append(RawMessage(topic, i % 3, 2 * i, case.key, case.value))
        case_at[(topic, i % 3, 2 * i)] = case
        messages.append(RawMessage(topics.created, i % 3, 2 * i + 1, None, event))
        valid_at.append(json.loads(event)["artwork_id"])
    processor = BatchProcessor(load_tagger(hashing_bundle_dir, None), StateStore(), consumer="chaos-corpus")
    guard = CrashGuard(AttemptJournal(tmp_path_factory.mktemp("inflight")), 3, processor)
    sink = InMemorySuggestionSink(topics)
    tag_and_publish(guard, messages, sink)  # nothing may escape
    return topics, cases, case_at, valid_at, sink


def test_the_corpus_is_the_benchmark_s():
    cases = _corpus()
    assert len(cases) >= 30 and len({c.name for c in cases}) == len(cases)
    assert {c.expect for c in cases} == {"dead_letter", "either"}


def test_each_case_ends_as_its_expect_says_and_the_stream_goes_on(outcome):
    topics, cases, case_at, valid_at, sink = outcome
    dead = {}
    for r in sink.records:
        assert record_size(r.key, r.value, r.headers) <= limits.DEFAULT_MAX_RECORD_BYTES
        if r.topic == topics.dead_letters:
            d = DeadLetter.model_validate_json(r.value)
            assert (d.topic, d.partition, d.offset) not in dead, "two dead letters for one message"
            dead[(d.topic, d.partition, d.offset)] = d
    suggested = [json.loads(r.value)["artwork_id"] for r in sink.records if r.topic == topics.suggestions]
    assert set(dead) <= set(case_at)  # no valid event was dead-lettered
    assert sorted(set(valid_at) & set(suggested)) == sorted(valid_at)
    wrong = {}
    for place, case in case_at.items():
        d = dead.get(place)
        answers = suggested.count(case.artwork_id) if case.artwork_id else 0
        if d is not None:
            ok = answers == 0 and d.error_type != "internal"
        else:
            ok = case.expect == "either" and answers == 1
        if not ok:
            wrong[case.name] = (case.expect, d.error_type if d else None, answers)
    assert not wrong, wrong  # case: (expected, dead letter's error_type, suggestions)
    assert len(dead) + sum(suggested.count(c.artwork_id) for c in cases if c.artwork_id) == len(cases)
