"""Immutable bundle versions behind an atomic pointer: loads never mix two bundles (issue #12)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from arttag.bundle import (
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
from arttag.catalogue import load_catalogue
from arttag.encoders import HashingEncoder
from arttag.errors import ModelError
from arttag.events import ArtworkMetadata
from arttag.training import TrainParams, train_ensemble

# Three cheap scorers keep a training at a second or two; knn and semantic hold arrays
# whose shapes follow the training slice and the vocabulary, which is what a mix breaks.
SCORERS = {"knn": {"neighbours": 10}, "semantic": {}, "tfidf": {}}


@pytest.fixture(scope="module")
def two_models(sample_catalogue):
    """Two ensembles trained on different slices of the sample: other vocabularies, other arrays."""
    records, _ = load_catalogue(sample_catalogue)
    encoder = HashingEncoder()
    params = TrainParams(scorers=SCORERS, evaluate=False, refit_on_rerank=False)
    a, _ = train_ensemble(records[:600], encoder, params)
    b, _ = train_ensemble(records[600:1000], encoder, params)
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
    swaps = 40
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
