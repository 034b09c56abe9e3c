"""Encoding ahead: the stream worker encodes its next batch while the current one is scored.

What must hold: the suggestions are the ones the tagger gives without it, the encoder is not
asked twice for a text, a message that kills the process in the encoder still counts as an
attempt, and a worker that stops with a batch encoded ahead counts nothing against it.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from arttag.encoders import HashingEncoder
from arttag.encoders.prefetch import EmbeddingPrefetch
from arttag.events import ArtworkCreated, ArtworkMetadata, encode_event
from arttag.model.bundle import load_tagger
from arttag.model.tagger import Prefetching, SuggestOptions
from arttag.model.fake_tagger import FakeTagger
from arttag_stream.attempts import AttemptJournal, CrashGuard, InFlight
from arttag_stream.pipeline import prepare_batch, process_batch
from arttag.catalogue.text import content_hash
from arttag_stream.processing import ArtworkState, BatchProcessor, RawMessage, StateStore

TOPIC = "artworks.created.v1"


class CountingEncoder(HashingEncoder):
    """The hashing encoder, counting the texts it is asked to encode."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    def encode(self, texts):
        self.calls.append(list(texts))
        return super().encode(texts)


def created(artwork_id: str, title: str, revision: int = 1) -> bytes:
    return encode_event(ArtworkCreated(artwork_id=artwork_id, revision=revision,
                                       artwork=ArtworkMetadata(title=title)))


def message(value: bytes, offset: int, partition: int = 0) -> RawMessage:
    return RawMessage(TOPIC, partition, offset, b"k", value)


def test_vectors_encoded_ahead_are_taken_once_and_equal_the_encoders():
    encoder = CountingEncoder()
    prefetch = EmbeddingPrefetch(encoder, max_size=3)
    assert prefetch.fill(["a boat", "a hill", "a boat"]) == 2
    assert prefetch.fill(["a boat"]) == 0  # held already: not encoded again
    vectors = prefetch.encode(["a hill", "a town", "a boat", "a hill"])
    np.testing.assert_array_equal(vectors, HashingEncoder().encode(["a hill", "a town", "a boat", "a hill"]))
    assert encoder.calls == [["a boat", "a hill"], ["a town"]]  # only the text not encoded ahead
    assert len(prefetch) == 0 and prefetch.taken == 3  # taken, so forgotten
    prefetch.fill(["1", "2", "3", "4"])
    assert len(prefetch) == 3  # bounded: the oldest never taken is dropped
    encoder.calls.clear()
    prefetch.encode(["1", "4"])
    assert encoder.calls == [["1"]]


def test_a_text_repeated_in_a_batch_is_encoded_once():
    encoder = CountingEncoder()
    vectors = EmbeddingPrefetch(encoder).encode(["a", "b", "a"])
    assert encoder.calls == [["a", "b"]]
    np.testing.assert_array_equal(vectors, HashingEncoder().encode(["a", "b", "a"]))


@pytest.fixture(scope="module")
def bundle_dir(hashing_bundle_dir):
    return hashing_bundle_dir


def test_a_bundle_tagger_encodes_ahead_and_suggests_the_same(bundle_dir, sample_catalogue):
    from arttag.catalogue.records import CatalogueReport, iter_catalogue

    metas = []
    for record in iter_catalogue(sample_catalogue, CatalogueReport()):
        metas.append(record.metadata)
        if len(metas) == 12:
            break
    options = SuggestOptions(limit=8)
    plain = load_tagger(bundle_dir, HashingEncoder()).suggest(metas, options)
    encoder = CountingEncoder()
    tagger = load_tagger(bundle_dir, encoder)
    assert isinstance(tagger, Prefetching)
    assert tagger.prefetch(metas) == len({c for call in encoder.calls for c in call})
    encoder.calls.clear()
    ahead = tagger.suggest(metas, options)
    assert encoder.calls == []  # every text was encoded ahead
    assert [[(t.tag_id, t.score) for t in s] for s in ahead] == [[(t.tag_id, t.score) for t in s] for s in plain]
    assert [[t.explanation for t in s] for s in ahead] == [[t.explanation for t in s] for s in plain]


def test_the_processor_encodes_ahead_only_what_it_will_tag(bundle_dir, tmp_path):
    encoder = CountingEncoder()
    tagger = load_tagger(bundle_dir, encoder)
    store = StateStore()
    meta = ArtworkMetadata(title="Unchanged title")
    store.merge("A1", ArtworkState(1, content_hash(meta), tagger.model_version))
    processor = BatchProcessor(tagger, store, consumer="c")
    batch = [message(created("A1", "Unchanged title"), 0), message(b"{not json", 1),
             message(created("A2", "A new harbour"), 2)]
    guard = CrashGuard(AttemptJournal(tmp_path), 3, processor)
    steps = prepare_batch(guard, batch)
    assert [c for call in encoder.calls for c in call] == ["A new harbour"]  # not the unchanged or the bad one
    assert AttemptJournal(tmp_path).read((TOPIC, 0)) == InFlight(0, 2, 1)  # begun before encoding
    encoder.calls.clear()
    result = process_batch(guard, batch, steps)
    assert encoder.calls == []
    assert [s.artwork_id for _, s in result.suggestions] == ["A2"] and len(result.dead_letters) == 1
    assert AttemptJournal(tmp_path).read((TOPIC, 0)) is None


def test_two_batches_in_flight_share_one_record_and_leave_it_in_order(tmp_path):
    journal = AttemptJournal(tmp_path)
    guard = CrashGuard(journal, 3, BatchProcessor(FakeTagger(), StateStore(), consumer="c"))
    first = [message(created(f"T{i}", "x"), i) for i in range(3)]
    second = [message(created(f"T{i}", "x"), i) for i in range(3, 6)]
    [step1] = guard.plan(first)
    guard.begin(step1)
    [step2] = prepare_batch(guard, second)  # encoded ahead while the first is processed
    assert journal.read((TOPIC, 0)) == InFlight(0, 5, 1)  # a crash now replays both, one by one
    process_batch(guard, first, [step1])
    assert journal.read((TOPIC, 0)) == InFlight(3, 5, 1)
    guard.release_unstarted()  # the worker stops before processing the second
    assert journal.read((TOPIC, 0)) is None
    assert len(guard.plan(second)) == 1  # after a restart: a whole batch again, no attempt counted


def test_a_batch_that_met_a_crash_is_not_encoded_ahead(bundle_dir, tmp_path):
    encoder = CountingEncoder()
    journal = AttemptJournal(tmp_path)
    journal.write((TOPIC, 0), InFlight(0, 1, 1))
    guard = CrashGuard(journal, 3, BatchProcessor(load_tagger(bundle_dir, encoder), StateStore(), consumer="c"))
    steps = prepare_batch(guard, [message(created("A1", "a"), 0), message(created("A2", "b"), 1)])
    assert len(steps) == 2 and encoder.calls == []  # one message at a time, nothing ahead


_CRASHING_ENCODER_WORKER = textwrap.dedent('''
    import json, os, sys
    from pathlib import Path
    from arttag.events import ArtworkCreated, ArtworkMetadata, encode_event
    from arttag_stream.attempts import AttemptJournal, CrashGuard
    from arttag_stream.pipeline import prepare_batch, process_batch
    from arttag_stream.processing import BatchProcessor, RawMessage, StateStore

    def crash_on(artworks):
        if any("CRASH" in a.title for a in artworks):
            os._exit(9)  # as a segfault in the encoder would: no cleanup, no except

    class Tagger:
        model_version = "m"
        def prefetch(self, artworks):
            crash_on(artworks)
            return len(artworks)
        def suggest(self, artworks, options=None):
            crash_on(artworks)
            return [[] for _ in artworks]

    data_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    messages = [RawMessage("artworks.created.v1", 0, i, None, encode_event(ArtworkCreated(
        artwork_id=f"T{i}", revision=1, artwork=ArtworkMetadata(title="CRASH" if i == 1 else "ok"))))
        for i in range(3)]
    guard = CrashGuard(AttemptJournal(data_dir), 3, BatchProcessor(Tagger(), StateStore(), consumer="c"))
    result = process_batch(guard, messages, prepare_batch(guard, messages))
    with open(out, "a") as fh:
        for m, s in result.suggestions:
            fh.write(json.dumps(["suggestion", m.offset]) + "\\n")
        for m, d in result.dead_letters:
            fh.write(json.dumps(["dead", m.offset, d.error_type, d.attempts]) + "\\n")
''')


def test_a_message_that_kills_the_encoder_ahead_counts_as_an_attempt(worker_lives):
    codes, records = worker_lives(_CRASHING_ENCODER_WORKER)
    assert codes == [9, 9, 9, 0]  # crashed encoding ahead, then twice alone in the tagger, then given up
    assert ["dead", 1, "repeated-failure", 3] in records
    assert {r[1] for r in records if r[0] == "suggestion"} == {0, 2}
