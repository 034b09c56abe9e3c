"""Immutable bundle versions behind an atomic pointer: loads never mix two bundles (issue #12)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from arttag.catalogue.records import iter_catalogue, load_catalogue
from arttag.encoders import HashingEncoder
from arttag.errors import ModelError
from arttag.events import ArtworkCreated, ArtworkMetadata, answer_digest, encode_event
from arttag.model.bundle import (
    MANIFEST,
    copy_version,
    list_versions,
    load_tagger,
    prune_versions,
    publish_version,
    read_manifest,
    resolve_bundle,
    verify_bundle,
    write_bundle,
)
from arttag.model.bundle_watch import BundleWatcher, bundle_loader
from arttag.model.training import TrainParams, train_ensemble
from arttag_stream.processing import BatchProcessor, RawMessage, StateStore

# Three cheap scorers keep a training at a second or two; knn and semantic hold arrays
# whose shapes follow the training slice and the vocabulary, which is what a mix breaks.
SCORERS = {"knn": {"neighbours": 10}, "semantic": {}, "tfidf": {}}


@pytest.fixture(scope="module")
def two_models(sample_catalogue):
    """Two ensembles trained on different slices of the sample: other vocabularies, other arrays."""
    records, _ = load_catalogue(sample_catalogue)
    encoder = HashingEncoder()
    params = TrainParams(scorers=SCORERS, evaluate=False, refit_on_rerank=False)
    a, _ = train_ensemble(records[:400], encoder, params)
    b, _ = train_ensemble(records[400:650], encoder, params)
    assert len(a.vocabulary) != len(b.vocabulary)
    return {"a": a, "b": b}


def _write(out: Path, ensemble, kind: str, n: int, keep: int = 3) -> dict:
    params = TrainParams(scorers=SCORERS, evaluate=False, model_version=f"{kind}-{n}")
    return write_bundle(out, ensemble, HashingEncoder(), params, data={}, report={}, metrics=None, keep=keep)


def _fingerprint(ensemble) -> tuple:
    return (tuple(t.id for t in ensemble.vocabulary), ensemble.scorer("knn").matrix.shape,
            ensemble.scorer("semantic").tag_matrix.shape)


def _check_consistent(tagger, expected: dict[str, tuple]) -> None:
    """The tagger's label, manifest and arrays all come from one written version."""
    kind = tagger.model_version.split("-")[0]
    assert _fingerprint(tagger.ensemble) == expected[kind], tagger.model_version
    assert tagger.manifest["vocabulary_size"] == len(tagger.vocabulary)
    assert read_manifest(tagger.directory)["model_version"] == tagger.model_version
    [suggestions] = tagger.suggest([ArtworkMetadata(title="Coast at sunset", medium="Oil paint on canvas")])
    assert all(s.tag_id in tagger.vocabulary for s in suggestions)


def test_loads_never_mix_versions_while_bundles_are_swapped(tmp_path, two_models):
    out = tmp_path / "bundles" / "current"
    expected = {k: _fingerprint(e) for k, e in two_models.items()}
    _write(out, two_models["a"], "a", 0)
    swaps = 24
    loads: list[str] = []
    failures: list[str] = []
    done = threading.Event()
    progressed = threading.Condition()

    def loader() -> None:
        while not done.is_set():
            try:
                tagger = load_tagger(out)
                _check_consistent(tagger, expected)
                loads.append(tagger.model_version)
            except Exception as exc:  # noqa: BLE001 - every failure is the finding
                failures.append(f"{type(exc).__name__}: {exc}")
            with progressed:
                progressed.notify_all()

    thread = threading.Thread(target=loader)
    thread.start()
    try:
        for i in range(1, swaps + 1):
            kind = "b" if i % 2 else "a"
            seen = len(loads) + len(failures)
            _write(out, two_models[kind], kind, i)
            # At least one load overlaps every swap.
            with progressed:
                progressed.wait_for(lambda: len(loads) + len(failures) > seen, timeout=60)
    finally:
        done.set()
        thread.join()
    assert failures == []
    assert len(loads) >= swaps
    assert len(set(loads)) > 2  # the loader saw many versions, not one
    assert len(list_versions(out)) == 3  # retention: the last three


def test_pointer_names_an_immutable_version_and_old_ones_are_kept(tmp_path, two_models):
    out = tmp_path / "current"
    first = _write(out, two_models["a"], "a", 1)
    assert out.is_symlink() and not Path(out.readlink()).is_absolute()
    v1 = resolve_bundle(out)
    assert v1.parent == tmp_path / "versions" and v1.name == "a-1"
    assert set(first["files"]) >= {"vocabulary.csv", "ensemble.json", "scorers/knn/embeddings.npy"}
    _write(out, two_models["b"], "b", 2)
    assert resolve_bundle(out).name == "b-2"
    assert load_tagger(v1).model_version == "a-1"  # the old version is untouched
    assert load_tagger(out).model_version == "b-2"
    # the same label twice gets a second directory; the first stays as it was
    _write(out, two_models["a"], "b", 2)
    assert resolve_bundle(out).name == "b-2-2"
    assert [p.name for p in list_versions(out)] == ["a-1", "b-2", "b-2-2"]


def test_retention_never_deletes_a_version_a_pointer_names(tmp_path, two_models):
    out = tmp_path / "current"
    _write(out, two_models["a"], "a", 1)
    pinned = tmp_path / "pinned"
    publish_version(pinned, resolve_bundle(out))  # e.g. a canary pointing at the first version
    for i in range(2, 6):
        _write(out, two_models["a"], "a", i, keep=2)
    assert [p.name for p in list_versions(out)] == ["a-1", "a-4", "a-5"]
    assert load_tagger(pinned).model_version == "a-1"
    assert prune_versions(out, keep=1) == [tmp_path / "versions" / "a-4"]


def test_a_plain_bundle_directory_still_loads(tmp_path, two_models):
    out = tmp_path / "current"
    _write(out, two_models["a"], "a", 1)
    plain = tmp_path / "copied"
    import shutil

    shutil.copytree(out, plain)  # follows the pointer: a plain folder, as `cp -rL` makes
    assert not plain.is_symlink()
    assert resolve_bundle(plain) == plain
    assert load_tagger(plain).model_version == "a-1"
    # a bundle written before hashes were recorded loads unverified
    manifest = json.loads((plain / MANIFEST).read_text())
    del manifest["files"]
    (plain / MANIFEST).chmod(0o644)  # versions are written read-only
    (plain / MANIFEST).write_text(json.dumps(manifest))
    assert verify_bundle(plain) == 0
    assert load_tagger(plain).model_version == "a-1"


def test_a_corrupt_or_incomplete_version_is_refused(tmp_path, two_models):
    out = tmp_path / "current"
    _write(out, two_models["a"], "a", 1)
    good = resolve_bundle(out)
    assert verify_bundle(good) > 0
    bad = copy_version(out, "a-bad")
    assert resolve_bundle(out) == bad
    embeddings = bad / "scorers" / "knn" / "embeddings.npy"
    embeddings.chmod(0o644)
    with open(embeddings, "r+b") as fh:  # one flipped byte deep inside the array
        fh.seek(-5, 2)
        byte = fh.read(1)
        fh.seek(-5, 2)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelError, match=r"scorers/knn/embeddings.npy.*sha256"):
        load_tagger(out)
    with pytest.raises(ModelError, match="sha256"):
        copy_version(out, "a-copy-of-bad")  # a damaged bundle is not copied into a fresh one
    embeddings.unlink()
    with pytest.raises(ModelError, match=r"scorers/knn/embeddings.npy.*missing"):
        load_tagger(out)
    publish_version(out, good)  # rollback
    assert load_tagger(out).model_version == "a-1"


def test_copy_version_relabels_and_rehashes(tmp_path, two_models):
    out = tmp_path / "current"
    _write(out, two_models["a"], "a", 1)
    copied = copy_version(out, "a-copy")
    assert copied.name == "a-copy" and resolve_bundle(out) == copied
    manifest = read_manifest(out)
    assert manifest["model_version"] == "a-copy"
    assert verify_bundle(copied) > 0
    assert load_tagger(out).model_version == "a-copy"


def test_a_missing_pointer_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="no model bundle"):
        load_tagger(tmp_path / "nothing")
    dangling = tmp_path / "current"
    dangling.symlink_to("versions/gone")
    with pytest.raises(ModelError, match="no model bundle"):
        resolve_bundle(dangling)


def _corrupt(version: Path) -> None:
    embeddings = version / "scorers" / "knn" / "embeddings.npy"
    embeddings.chmod(0o644)
    with open(embeddings, "r+b") as fh:
        fh.seek(-5, 2)
        byte = fh.read(1)
        fh.seek(-5, 2)
        fh.write(bytes([byte[0] ^ 0xFF]))


@pytest.fixture(scope="module")
def events(sample_catalogue) -> list[tuple[str, ArtworkMetadata]]:
    out = []
    for record in iter_catalogue(sample_catalogue):
        out.append((record.artwork_id, record.metadata))
        if len(out) >= 40:
            return out
    return out


def _messages(events, start: int, n: int) -> list[RawMessage]:
    return [RawMessage("artworks.created.v1", 0, start + i, aid.encode(),
                       encode_event(ArtworkCreated(artwork_id=aid, revision=1, artwork=meta)))
            for i, (aid, meta) in enumerate(events[start:start + n])]


def _versions_and_tags(result) -> tuple[set[str], set[str]]:
    return ({e.model_version for _, e in result.suggestions},
            {t.tag_id for _, e in result.suggestions for t in e.suggestions})


def test_processor_switches_model_between_batches_and_refuses_a_corrupt_version(
        tmp_path, two_models, events, caplog):
    out = tmp_path / "current"
    _write(out, two_models["a"], "a", 1)
    watcher = BundleWatcher(out, bundle_loader(None), load_tagger(out), interval_s=0)
    processor = BatchProcessor(watcher.tagger, StateStore(), consumer="test")
    watcher.subscribe(processor.use)
    vocab_a = {t.id for t in two_models["a"].vocabulary}
    vocab_b = {t.id for t in two_models["b"].vocabulary}

    versions, tags = _versions_and_tags(processor.process(_messages(events, 0, 4)))
    assert versions == {"a-1"} and tags <= vocab_a
    assert not watcher.check()  # the pointer has not moved

    _write(out, two_models["b"], "b", 2)
    assert watcher.check() and watcher.tagger.model_version == "b-2" and watcher.swaps == 1
    result = processor.process(_messages(events, 4, 4))
    versions, tags = _versions_and_tags(result)
    assert versions == {"b-2"} and tags <= vocab_b and not tags <= vocab_a
    assert all(e.suggestion_id.endswith(f":b-2:{answer_digest(e.suggestions)}") for _, e in result.suggestions)
    # artworks answered by the old model are answered again by the new one
    assert len(processor.process(_messages(events, 0, 4)).suggestions) == 4

    copy_version(out, "b-broken")
    _corrupt(resolve_bundle(out))
    with caplog.at_level("ERROR", logger="arttag.model.bundle_watch"):
        assert not watcher.check()
        assert not watcher.check()  # refused once, said once
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1 and "b-2 keeps serving" in refusals[0].getMessage()
    assert "sha256" in refusals[0].getMessage() and watcher.refusals == 1
    versions, _ = _versions_and_tags(processor.process(_messages(events, 8, 4)))
    assert versions == {"b-2"}

    # a good version after the broken one is taken
    copy_version(out, "a-3", source=tmp_path / "versions" / "a-1")
    assert watcher.check() and watcher.last_error is None
    versions, tags = _versions_and_tags(processor.process(_messages(events, 12, 4)))
    assert versions == {"a-3"} and tags <= vocab_a


def test_a_swap_during_a_batch_takes_effect_with_the_next_batch(tmp_path, two_models, events):
    out = tmp_path / "current"
    _write(out, two_models["a"], "a", 1)
    watcher = BundleWatcher(out, bundle_loader(None), load_tagger(out), interval_s=0)

    class SwapsMidBatch:
        """The first tagger; while it works on its batch, a new version is published and loaded."""

        def __init__(self, inner) -> None:  # noqa: ANN001
            self.inner = inner

        @property
        def model_version(self) -> str:
            return self.inner.model_version

        def suggest(self, artworks, options=None):  # noqa: ANN001, ANN201
            _write(out, two_models["b"], "b", 2)
            assert watcher.check()
            return self.inner.suggest(artworks, options)

    processor = BatchProcessor(SwapsMidBatch(watcher.tagger), StateStore(), consumer="test")
    watcher.subscribe(processor.use)
    versions, tags = _versions_and_tags(processor.process(_messages(events, 0, 6)))
    assert versions == {"a-1"} and tags <= {t.id for t in two_models["a"].vocabulary}
    versions, tags = _versions_and_tags(processor.process(_messages(events, 6, 6)))
    assert versions == {"b-2"} and tags <= {t.id for t in two_models["b"].vocabulary}


def test_api_serves_the_new_version_and_keeps_the_old_one_when_the_next_is_broken(
        tmp_path, two_models, events):
    from arttag.settings import ApiSettings
    from arttag_api.app import create_app
    from fastapi.testclient import TestClient

    out = tmp_path / "current"
    _write(out, two_models["a"], "a", 1)
    settings = ApiSettings(bundle_dir=out, bundle_reload_interval_s=0.1, latest_view=False)
    app = create_app(settings, broker_check=lambda: True)
    artwork = {"title": events[0][1].title, "medium": "Oil paint on canvas"}

    def wait_for(condition) -> dict:  # noqa: ANN001
        for _ in range(600):
            body = client.get("/readyz").json()
            if condition(body):
                return body
            time.sleep(0.1)
        raise AssertionError(body)

    with TestClient(app) as client:
        wait_for(lambda b: b["model_version"] == "a-1")
        answer = client.post("/v1/suggest", json={"artwork": artwork}).json()
        assert answer["model_version"] == "a-1"
        _write(out, two_models["b"], "b", 2)
        wait_for(lambda b: b["model_version"] == "b-2")
        answer = client.post("/v1/suggest", json={"artwork": artwork}).json()
        assert answer["model_version"] == "b-2"
        assert {s["tag_id"] for s in answer["suggestions"]} <= {t.id for t in two_models["b"].vocabulary}
        copy_version(out, "b-broken")
        _corrupt(resolve_bundle(out))
        body = wait_for(lambda b: b["detail"])
        assert body["ready"] and body["model_version"] == "b-2"
        assert "refused" in body["detail"][0] and "b-2 keeps serving" in body["detail"][0]
        answer = client.post("/v1/suggest", json={"artwork": artwork}).json()
        assert answer["model_version"] == "b-2"


@pytest.mark.kafka
def test_running_worker_switches_version_between_batches_and_keeps_serving_on_a_broken_one(
        tmp_path, two_models, events, kafka_settings):
    import os
    import subprocess
    import sys

    from arttag.kafka import make_producer
    from arttag.kafka.admin import create_topics
    from arttag.kafka.clients import consumer
    from arttag.kafka.topics import StreamTopics
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    out = tmp_path / "bundles" / "current"
    _write(out, two_models["a"], "a", 1)
    create_topics(kafka_settings)
    topics = StreamTopics.for_prefix(kafka_settings.topic_prefix)
    log_path = tmp_path / "worker.log"
    env = {**os.environ,
           "ARTTAG_KAFKA__BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
           "ARTTAG_KAFKA__TOPIC_PREFIX": kafka_settings.topic_prefix,
           "ARTTAG_BUNDLE_DIR": str(out), "ARTTAG_ENCODER_KIND": "hashing",
           "ARTTAG_BUNDLE_RELOAD_INTERVAL_S": "0.2",
           "ARTTAG_CONSUMER_GROUP": f"g-{tmp_path.name[-12:]}", "ARTTAG_METRICS_PORT": "0",
           "ARTTAG_SESSION_TIMEOUT_S": "6", "ARTTAG_HEARTBEAT_INTERVAL_S": "1",
           "ARTTAG_BATCH_MAX_MS": "100", "ARTTAG_DATA_DIR": str(tmp_path / "data")}
    with open(log_path, "ab") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "arttag_stream"], env=env, stdout=fh,
                                stderr=subprocess.STDOUT)
    reader = consumer(kafka_settings)
    seen: dict[str, str] = {}

    def wait_log(text: str) -> None:
        for _ in range(900):
            if text in log_path.read_text(errors="replace"):
                return
            assert proc.poll() is None, log_path.read_text()[-3000:]
            time.sleep(0.1)
        raise AssertionError(log_path.read_text()[-3000:])

    def tag(start: int, n: int) -> set[str]:
        """Publish artworks start..start+n; the model versions that answered them."""
        p = make_producer(kafka_settings)
        for m in _messages(events, start, n):
            p.produce(topics.created, key=m.key, value=m.value)
        assert p.flush(30) == 0
        want = {aid for aid, _ in events[start:start + n]}
        for _ in range(900):
            if want <= seen.keys():
                return {seen[a] for a in want}
            for msg in reader.consume(100, 0.1):
                if msg.error() is None and msg.value() is not None:
                    record = json.loads(msg.value())
                    seen[record["artwork_id"]] = record["model_version"]
            assert proc.poll() is None, log_path.read_text()[-3000:]
        raise AssertionError(f"no suggestions for {want - seen.keys()}")

    try:
        wait_log("Worker ready")
        meta = reader.list_topics(topics.suggestions, timeout=10).topics[topics.suggestions]
        reader.assign([TopicPartition(topics.suggestions, p, OFFSET_BEGINNING) for p in meta.partitions])
        assert tag(0, 4) == {"a-1"}
        _write(out, two_models["b"], "b", 2)
        wait_log("model swapped: a-1 -> b-2")
        assert tag(4, 4) == {"b-2"}
        copy_version(out, "b-broken")
        _corrupt(resolve_bundle(out))
        wait_log("refused, b-2 keeps serving")
        assert tag(8, 4) == {"b-2"}
    finally:
        reader.close()
        proc.terminate()
        proc.wait(30)
    assert proc.returncode == 0, log_path.read_text()[-3000:]
