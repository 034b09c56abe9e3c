"""No message can stop the worker: poison inputs, bounded outputs, crash journal (without Kafka)."""

from __future__ import annotations

import hashlib
import json
import os
import textwrap
from pathlib import Path

import pytest
from arttag import limits
from arttag.catalogue.records import iter_catalogue
from arttag.catalogue.vocabulary import Tag
from arttag.errors import EventDecodeError
from arttag.events import (
    ArtworkCreated,
    ArtworkMetadata,
    DeadLetter,
    decode_artwork_event,
    encode_event,
)
from arttag.kafka.sink import InMemorySuggestionSink, PublishFailed, dead_letter_key
from arttag.model.fake_tagger import FakeTagger, TitleRule
from arttag.settings import StreamSettings
from arttag_stream.attempts import AttemptJournal, CrashGuard, InFlight
from arttag_stream.pipeline import tag_and_publish
from arttag_stream.processing import (
    BatchProcessor,
    BatchResult,
    RawMessage,
    StateStore,
    record_size,
    suggestion_headers,
    suggestion_key,
)
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

TOPIC = "artworks.created.v1"


class Crash(BaseException):
    """Stands for what no ``except Exception`` sees: the process dying mid-batch."""


def crashing_tagger() -> FakeTagger:
    """One tag per artwork (the title's first word); a title holding CRASH kills the 'process'."""
    return FakeTagger(fail_on="CRASH", failure=Crash)


def created(artwork_id: str, title: str = "Boat at sea", **artwork) -> bytes:
    return encode_event(ArtworkCreated(artwork_id=artwork_id, revision=1,
                                       artwork=ArtworkMetadata(title=title, **artwork)))


def message(value: bytes | None, offset: int = 0, key: bytes | None = b"k", partition: int = 0) -> RawMessage:
    return RawMessage(TOPIC, partition, offset, key, value)


def check_outputs(result: BatchResult, max_record_bytes: int) -> None:
    """Every record fits, and every dead letter holds the original or an honest prefix of it."""
    for _, s in result.suggestions:
        assert record_size(suggestion_key(s), result.value(s), suggestion_headers(s)) <= max_record_bytes
    for m, d in result.dead_letters:
        raw = result.value(d)
        assert record_size(dead_letter_key(m.key), raw) <= max_record_bytes
        again = DeadLetter.model_validate_json(raw)
        assert (again.topic, again.partition, again.offset) == (m.topic, m.partition, m.offset)
        assert len(again.error) <= limits.MAX_ERROR_CHARS and again.error_type
        if m.value is not None:
            assert again.original_value_length == len(m.value)
            assert again.original_value_sha256 == hashlib.sha256(m.value).hexdigest()
        if again.truncated:
            assert m.value is None or m.value.startswith(again.original_value())
            assert m.key is None or m.key.startswith(again.original_key())
        else:
            assert again.original_value() == m.value and again.original_key() == m.key


# -- the cases seen in production, one by one ----------------------------------------------------------


def test_json_nested_a_thousand_levels_is_a_dead_letter_not_a_recursion_error():
    deep = b'{"a":' * 1000 + b"1" + b"}" * 1000  # 2 KB
    result = BatchProcessor(FakeTagger(), StateStore(), consumer="c").process(
        [message(deep, 0), message(created("T1"), 1)])
    [(_, dead)] = result.dead_letters
    assert dead.error_type == "invalid_json" and "recursion" in dead.error
    assert [s.artwork_id for _, s in result.suggestions] == ["T1"]
    check_outputs(result, limits.DEFAULT_MAX_RECORD_BYTES)


def test_deep_nesting_inside_an_ignored_field_of_a_valid_event_is_refused_too():
    event = json.loads(created("T1"))
    event["extra"] = json.loads("[" * 150 + "]" * 150)
    decode_artwork_event(json.dumps(event).encode())  # 150 levels: fine, ignored
    raw = json.dumps(event).encode().replace(b"[" * 150, b"[" * 300).replace(b"]" * 150, b"]" * 300)
    with pytest.raises(EventDecodeError) as err:
        decode_artwork_event(raw)
    assert err.value.context["reason"] == "invalid_json"


def test_a_900_kb_message_that_is_not_json_becomes_a_shortened_dead_letter():
    raw = os.urandom(450_000).hex().encode()  # 900 KB, valid UTF-8, not JSON
    m = message(raw, 7, key=b"big")
    result = BatchProcessor(FakeTagger(), StateStore(), consumer="c").process([m])
    [(_, dead)] = result.dead_letters
    assert dead.error_type == "too_large" and dead.truncated
    assert dead.original_value() == raw[:limits.DEAD_LETTER_PREFIX_BYTES]
    assert dead.original_value_length == len(raw)
    assert dead.original_value_sha256 == hashlib.sha256(raw).hexdigest()
    assert (dead.topic, dead.partition, dead.offset) == (TOPIC, 0, 7)
    assert len(result.value(dead)) < 16_000
    check_outputs(result, limits.DEFAULT_MAX_RECORD_BYTES)


def test_a_valid_event_with_a_400_kb_artwork_id_is_refused_by_the_contract():
    event = json.loads(created("T1"))
    event["artwork_id"] = "A" * 400_000
    raw = json.dumps(event).encode()
    result = BatchProcessor(FakeTagger(), StateStore(), consumer="c").process([message(raw)])
    assert not result.suggestions
    [(_, dead)] = result.dead_letters
    assert dead.error_type == "schema" and "artwork_id" in dead.error
    assert dead.truncated  # 400 KB in base64 does not fit the default 512 KiB record
    check_outputs(result, limits.DEFAULT_MAX_RECORD_BYTES)


def test_small_dead_letters_keep_the_original_whole_and_big_keys_are_cut():
    key = b"K" * 5000
    result = BatchProcessor(FakeTagger(), StateStore(), consumer="c").process(
        [message(b"{oops", key=key), message(b"{oops", 1, key=b"small")])
    (m1, whole_but_long_key), (_, whole) = result.dead_letters
    assert whole.original_value() == b"{oops" and whole.original_key() == b"small" and not whole.truncated
    assert whole_but_long_key.original_key() == key  # 5 KB of key fits a record: kept whole
    assert dead_letter_key(m1.key) == key[:limits.DEAD_LETTER_PREFIX_BYTES]  # the record's own key
    check_outputs(result, limits.DEFAULT_MAX_RECORD_BYTES)


@pytest.mark.parametrize("raw, reason", [
    (b'{"event_type": "artwork.created", "artwork_id": "\\ud800", "revision": 1, "artwork": {"title": "x"}}',
     "invalid_json"),  # a lone surrogate: valid JSON grammar, but no output could encode it
    (b'{"revision": ' + b"9" * 5000 + b"}", "invalid_json"),
    (json.dumps({"event_type": "artwork.created", "artwork_id": "T", "revision": 2**64,
                 "artwork": {"title": "x"}}).encode(), "schema"),
    (json.dumps({"event_type": "x" * 200_000, "artwork_id": "T", "revision": 1}).encode(), "schema"),
])
def test_odd_json_is_dead_lettered_with_a_bounded_error(raw, reason):
    result = BatchProcessor(FakeTagger(), StateStore(), consumer="c").process([message(raw)])
    [(_, dead)] = result.dead_letters
    assert dead.error_type == reason
    check_outputs(result, limits.DEFAULT_MAX_RECORD_BYTES)


def test_a_suggestion_larger_than_a_record_is_dead_lettered_and_not_claimed():
    store = StateStore()
    # the suggestion's label alone, 100 KB, is beyond the 64 KiB record
    huge = FakeTagger([TitleRule("Boat", Tag("boat", "x" * 100_000))])
    processor = BatchProcessor(huge, store, consumer="c",
                               max_record_bytes=limits.MIN_RECORD_BYTES)
    result = processor.process([message(created("T1"))])
    [(_, dead)] = result.dead_letters
    assert dead.error_type == "output_too_large" and not result.suggestions and not result.latest
    assert store.get("T1") is None
    check_outputs(result, limits.MIN_RECORD_BYTES)


def test_a_tagger_answer_that_is_not_a_suggestion_is_an_internal_dead_letter():
    class Broken(FakeTagger):
        def suggest(self, artworks, options=None):
            return [["not a suggestion"] for _ in artworks]

    result = BatchProcessor(Broken(), StateStore(), consumer="c").process(
        [message(created("T1")), message(created("T2"), 1)])
    assert [d.error_type for _, d in result.dead_letters] == ["internal", "internal"]


# -- the limits of the contracts -----------------------------------------------------------------------


@pytest.mark.parametrize("field, bad, good", [
    ("title", "t" * (limits.MAX_SHORT_TEXT_CHARS + 1), "t" * limits.MAX_SHORT_TEXT_CHARS),
    ("description", "d" * (limits.MAX_LONG_TEXT_CHARS + 1), "d" * limits.MAX_LONG_TEXT_CHARS),
    ("artists", ["a"] * (limits.MAX_LIST_ITEMS + 1), ["a"] * limits.MAX_LIST_ITEMS),
    ("artists", ["a" * (limits.MAX_SHORT_TEXT_CHARS + 1)], ["a" * limits.MAX_SHORT_TEXT_CHARS]),
    ("tags", [{"id": "1"}] * (limits.MAX_TAGS + 1), [{"id": "1"}] * limits.MAX_TAGS),
    ("tags", [{"id": "1" * (limits.MAX_ID_CHARS + 1)}], [{"id": "1" * limits.MAX_ID_CHARS}]),
    ("year", limits.YEAR_MAX + 1, limits.YEAR_MAX),
])
def test_each_field_is_bounded(field, bad, good):
    with pytest.raises(ValidationError) as err:
        ArtworkMetadata.model_validate({"title": "x", field: bad})
    assert field in str(err.value)
    ArtworkMetadata.model_validate({"title": "x", field: good})


def test_the_whole_text_is_bounded_even_when_each_field_is_within_its_limit():
    per = limits.MAX_LONG_TEXT_CHARS
    ArtworkMetadata(title="x", description="d" * per, inscription="i" * per)
    with pytest.raises(ValidationError, match="characters in all"):
        ArtworkMetadata(title="x", description="d" * per, inscription="i" * per,
                        artists=["a" * limits.MAX_SHORT_TEXT_CHARS] * 6)


def test_ids_and_revisions_of_artwork_events_are_bounded():
    meta = ArtworkMetadata(title="x")
    with pytest.raises(ValidationError, match="artwork_id"):
        ArtworkCreated(artwork_id="a" * (limits.MAX_ID_CHARS + 1), revision=1, artwork=meta)
    with pytest.raises(ValidationError, match="revision"):
        ArtworkCreated(artwork_id="a", revision=limits.MAX_REVISION + 1, artwork=meta)
    ArtworkCreated(artwork_id="a" * limits.MAX_ID_CHARS, revision=limits.MAX_REVISION, artwork=meta)


def test_old_dead_letters_still_parse():
    old = {"schema_version": 1, "event_type": "dead_letter", "original_value_b64": "e30=",
           "original_key_b64": None, "topic": "t", "partition": 0, "offset": 1, "error": "e" * 5000,
           "error_type": "schema", "consumer": "c", "failed_at": "2025-01-01T00:00:00Z"}
    dead = DeadLetter.model_validate(old)
    assert dead.original_value() == b"{}" and not dead.truncated and dead.original_value_length is None


def test_the_record_size_setting_cannot_be_too_small_for_a_shortened_dead_letter():
    with pytest.raises(ValidationError):
        StreamSettings(max_record_bytes=limits.MIN_RECORD_BYTES - 1)


# -- property: whatever arrives, one suggestion or one dead letter ----------------------------------------


@pytest.fixture(scope="module")
def real_tagger(hashing_bundle_dir):
    from arttag.model.bundle import load_tagger

    return load_tagger(hashing_bundle_dir, None)


@pytest.fixture(scope="module")
def base_events(sample_catalogue) -> list[dict]:
    out = []
    for record in iter_catalogue(sample_catalogue):
        out.append(json.loads(created(record.artwork_id, **record.metadata.model_dump())))
        if len(out) >= 40:
            break
    return out


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_lengths = st.sampled_from([
    limits.MAX_ID_CHARS, limits.MAX_ID_CHARS + 1, limits.MAX_SHORT_TEXT_CHARS + 1,
    limits.MAX_LONG_TEXT_CHARS, limits.MAX_TEXT_CHARS + 1, 120_000, 600_000,
])
_fields = st.sampled_from([
    ("artwork_id",), ("revision",), ("event_type",), ("event_id",), ("source",), ("occurred_at",),
    ("artwork",), ("artwork", "title"), ("artwork", "artists"), ("artwork", "description"),
    ("artwork", "year"), ("artwork", "tags"), ("artwork", "medium"), ("artwork", "inscription"),
    ("artwork", "unknown"), ("unknown",),
])


def unique_id(value: object, index: int) -> object:
    """``value`` made unique to message ``index`` when it is a string, at the same length when it
    is at least as long as the mark (so a length at a limit stays at it): two messages of a batch
    never share an artwork id, so neither is skipped as the other's duplicate."""
    if not isinstance(value, str):
        return value
    mark = f"P{index}-"
    return mark + value[len(mark):] if len(value) >= len(mark) else mark + value


@st.composite
def mutated_event(draw, base_events: list[dict], index: int) -> bytes:
    """A sample event under a new id (unique in its batch), with a field replaced, removed,
    lengthened or nested deep."""
    event = json.loads(json.dumps(draw(st.sampled_from(base_events))))
    event["artwork_id"] = f"P{index}-{draw(st.integers(0, 10**9))}"
    path = draw(_fields)
    parent = event
    for part in path[:-1]:
        parent = parent.setdefault(part, {}) if isinstance(parent.get(part, {}), dict) else {}
    how = draw(st.sampled_from(["value", "delete", "long", "deep", "keep", "unicode"]))
    if how == "value":
        parent[path[-1]] = draw(_json)
    elif how == "delete":
        parent.pop(path[-1], None)
    elif how == "long":
        n = draw(_lengths)
        parent[path[-1]] = [draw(st.sampled_from("aé€😀"))] * min(n, 5000) if draw(st.booleans()) \
            else draw(st.sampled_from("aé€😀")) * n
    elif how == "deep":
        depth = draw(st.integers(1, 3000))
        parent[path[-1]] = "@DEEP@"
        text = json.dumps(event).replace('"@DEEP@"', "[" * depth + "]" * depth)
        return text.encode()
    elif how == "unicode":
        parent[path[-1]] = draw(st.text(min_size=1, max_size=200))
    if path == ("artwork_id",) and how != "delete":
        event["artwork_id"] = unique_id(event["artwork_id"], index)
    raw = json.dumps(event, ensure_ascii=draw(st.booleans())).encode()
    corrupt = draw(st.sampled_from(["none", "none", "bad-utf8", "truncate", "surrogate"]))
    if corrupt == "bad-utf8":
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + b"\xc3\x28\xff" + raw[at:]
    elif corrupt == "truncate":
        raw = raw[:draw(st.integers(0, len(raw)))]
    elif corrupt == "surrogate":
        raw = raw.replace(b'"title": "', b'"title": "\\udc80', 1)
    return raw


@st.composite
def poison_batch(draw, base_events: list[dict]) -> list[RawMessage]:
    n = draw(st.integers(1, 6))
    out = []
    for i in range(n):
        kind = draw(st.sampled_from(["bytes", "json", "event", "event", "event", "huge", "none"]))
        if kind == "bytes":
            value = draw(st.binary(max_size=3000))
        elif kind == "json":
            value = json.dumps(draw(_json)).encode()
        elif kind == "huge":
            value = draw(st.sampled_from([b"x", b"{", b"\xff", b"["])) * draw(
                st.sampled_from([limits.MAX_EVENT_BYTES, limits.MAX_EVENT_BYTES + 1, 900_000]))
        elif kind == "none":
            value = None
        else:
            value = draw(mutated_event(base_events, i))
        key = draw(st.one_of(st.none(), st.binary(max_size=64), st.just(b"K" * 200_000)))
        out.append(RawMessage(TOPIC, draw(st.integers(0, 2)), 1000 + i, key, value))
    return out


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_message_yields_exactly_one_suggestion_or_dead_letter_within_the_record_size(
        data, real_tagger, base_events, tmp_path_factory):
    """The worker's path: the crash journal, encoding ahead (or not), processing, the sink's two
    waves; what the sink received is checked, message by message."""
    from arttag_stream.pipeline import prepare_batch, process_batch

    messages = data.draw(poison_batch(base_events))
    max_record_bytes = limits.MIN_RECORD_BYTES  # the smallest allowed: outputs are tightest
    processor = BatchProcessor(real_tagger, StateStore(), consumer="prop",
                               max_record_bytes=max_record_bytes)
    guard = CrashGuard(AttemptJournal(tmp_path_factory.mktemp("inflight")), 3, processor)
    sink = InMemorySuggestionSink()
    topics = sink.topics
    if data.draw(st.booleans(), label="encoded ahead, as the worker does under a backlog"):
        result = process_batch(guard, messages, prepare_batch(guard, messages))
        sink.publish(result)
    else:
        result = tag_and_publish(guard, messages, sink)  # nothing may escape
    assert not result.skipped  # every artwork id is new to the state and unique in the batch
    assert not list(guard.journal.directory.iterdir())  # processed: nothing left in flight

    first_wave = sink.waves[0] if sink.waves else []
    assert all(r.topic in (topics.suggestions, topics.dead_letters) for r in first_wave)
    suggested = [json.loads(r.value) for r in first_wave if r.topic == topics.suggestions]
    dead = [DeadLetter.model_validate_json(r.value) for r in first_wave if r.topic == topics.dead_letters]
    latest = [r for wave in sink.waves[1:] for r in wave]
    assert all(r.topic == topics.latest for r in latest)
    for r in sink.records:
        assert record_size(r.key, r.value, r.headers) <= max_record_bytes

    by_place = {(m.topic, m.partition, m.offset): m for m in messages}
    dead_places = [(d.topic, d.partition, d.offset) for d in dead]
    assert len(set(dead_places)) == len(dead_places) and set(dead_places) <= by_place.keys()
    answered = [m for place, m in by_place.items() if place not in dead_places]
    # Each message not dead-lettered is a valid event with exactly one suggestion, its own.
    expected_ids = sorted(decode_artwork_event(m.value).artwork_id for m in answered)
    assert sorted(s["artwork_id"] for s in suggested) == expected_ids
    assert sorted(r.key.decode() for r in latest) == expected_ids  # all new: each is the latest
    assert len(suggested) + len(dead) == len(messages)
    assert all(s["model_version"] == real_tagger.model_version for s in suggested)
    for d in dead:
        assert d.error_type in {"empty", "too_large", "undecodable", "invalid_json", "schema", "model",
                                "output_too_large"}, d.error  # no unexpected error on any input
    check_outputs(result, max_record_bytes)
    # --hypothesis-show-statistics: how often each outcome was reached
    for outcome in ["suggestion"] * bool(suggested) + [f"dead:{d.error_type}" for d in dead]:
        event(outcome)


# -- a message that crashes the process: the journal and repeated-failure ---------------------------------


def run_until_done(data_dir: Path, messages: list[RawMessage], published: list[BatchResult],
                   max_attempts: int = 3, fail_publish: bool = False) -> bool:
    """One worker 'life': False when it crashed (or could not publish), like a restart would see it."""
    guard = CrashGuard(AttemptJournal(data_dir), max_attempts,
                       BatchProcessor(crashing_tagger(), StateStore(), consumer="c"))

    class Sink(InMemorySuggestionSink):
        def publish(self, result):
            if fail_publish:
                raise PublishFailed("broker unavailable")
            super().publish(result)
            published.append(result)

    try:
        tag_and_publish(guard, messages, Sink())
        return True
    except (Crash, PublishFailed):
        return False


def test_a_message_that_crashes_the_worker_is_dead_lettered_after_max_attempts(tmp_path):
    messages = [message(created(f"T{i}", title="CRASH" if i == 2 else f"Fine {i}"), i) for i in range(5)]
    published: list[BatchResult] = []
    lives = 1
    while not run_until_done(tmp_path, messages, published):
        lives += 1
        assert lives <= 10, "never converged"
    assert lives == 4  # the batch, then the message alone twice, then it is given up
    dead = [(m.offset, d) for r in published for m, d in r.dead_letters]
    assert [(o, d.error_type, d.attempts) for o, d in dead] == [(2, "repeated-failure", 3)]
    suggested = {s.artwork_id for r in published for _, s in r.suggestions}
    assert suggested == {"T0", "T1", "T3", "T4"}
    assert not list(tmp_path.iterdir())  # nothing left in flight


def test_publishing_failures_do_not_count_as_attempts(tmp_path):
    messages = [message(created("T1"), 0)]
    published: list[BatchResult] = []
    for _ in range(5):
        assert not run_until_done(tmp_path, messages, published, fail_publish=True)
    assert run_until_done(tmp_path, messages, published)
    [result] = published
    assert [s.artwork_id for _, s in result.suggestions] == ["T1"] and not result.dead_letters


def test_the_journal_records_the_batch_in_flight_durably_and_plans_a_replay_message_by_message(tmp_path):
    journal = AttemptJournal(tmp_path)
    guard = CrashGuard(journal, 3, BatchProcessor(FakeTagger(), StateStore(), consumer="c"))
    batch = [message(created(f"T{i}"), 10 + i, partition=i % 2) for i in range(4)]
    [step] = guard.plan(batch)
    assert step.records == {(TOPIC, 0): InFlight(10, 12, 1), (TOPIC, 1): InFlight(11, 13, 1)}
    guard.run(step)
    assert journal.read((TOPIC, 0)) == InFlight(10, 12, 1)  # written before processing; kept until done
    steps = guard.plan(batch[1:])  # a restart replays from an earlier commit
    assert [s.messages[0].offset for s in steps] == [11, 12, 13]
    assert [s.records for s in steps] == [{(TOPIC, 1): InFlight(11, 11, 2)},
                                          {(TOPIC, 0): InFlight(12, 12, 2)},
                                          {(TOPIC, 1): InFlight(13, 13, 2)}]
    guard.done(step)
    assert journal.read((TOPIC, 0)) is None and len(guard.plan(batch)) == 1
    assert len(CrashGuard(journal, 0, guard.processor).plan(batch)) == 1  # 0: journal off


_CRASHING_WORKER = textwrap.dedent('''
    import asyncio, json, os, sys
    from pathlib import Path
    from arttag.events import ArtworkCreated, ArtworkMetadata, encode_event
    from arttag.kafka.sink import InMemorySuggestionSink
    from arttag_stream.attempts import AttemptJournal, CrashGuard
    from arttag_stream.pipeline import tag_and_publish
    from arttag_stream.processing import BatchProcessor, RawMessage, StateStore

    class Tagger:
        model_version = "m"
        def suggest(self, artworks, options=None):
            if any("CRASH" in a.title for a in artworks):
                os._exit(9)  # as a segfault or the OOM killer would: no cleanup, no except
            return [[] for _ in artworks]

    data_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    messages = [RawMessage("artworks.created.v1", 0, i, None, encode_event(ArtworkCreated(
        artwork_id=f"T{i}", revision=1, artwork=ArtworkMetadata(title="CRASH" if i == 1 else "ok"))))
        for i in range(3)]
    guard = CrashGuard(AttemptJournal(data_dir), 3, BatchProcessor(Tagger(), StateStore(), consumer="c"))

    class Sink(InMemorySuggestionSink):
        def publish(self, result):
            with open(out, "a") as fh:
                for m, s in result.suggestions:
                    fh.write(json.dumps(["suggestion", m.offset]) + "\\n")
                for m, d in result.dead_letters:
                    fh.write(json.dumps(["dead", m.offset, d.error_type, d.attempts]) + "\\n")

    tag_and_publish(guard, messages, Sink())
''')


def test_a_message_that_kills_the_process_is_given_up_across_real_restarts(worker_lives):
    codes, records = worker_lives(_CRASHING_WORKER)
    assert codes == [9, 9, 9, 0]
    assert ["dead", 1, "repeated-failure", 3] in records
    assert {r[1] for r in records if r[0] == "suggestion"} == {0, 2}


def test_a_batch_leaves_the_journal_once_processed_so_publishing_never_counts(tmp_path):
    from arttag_stream.pipeline import process_batch

    journal = AttemptJournal(tmp_path)
    guard = CrashGuard(journal, 3, BatchProcessor(FakeTagger(), StateStore(), consumer="c"))
    batch = [message(created(f"T{i}"), 20 + i) for i in range(3)]
    result = process_batch(guard, batch)
    assert [s.artwork_id for _, s in result.suggestions] == ["T0", "T1", "T2"]
    assert journal.read((TOPIC, 0)) is None  # published next, while the next batch is tagged
    assert result.process_s > 0 and result.journal_s >= 0
