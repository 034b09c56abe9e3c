"""Model bundles: immutable versioned directories behind an atomic pointer, and the Tagger that serves one.

Layout of a bundle root (``arttag train --out <root>/current`` writes it; :func:`load_tagger` reads it,
without torch; docs/bundles.md)::

    <root>/current -> versions/<version>   the pointer: a relative symlink, replaced atomically
    <root>/versions/<version>/             one complete bundle, never modified once renamed into place
        manifest.json          model_version, data hash, split rule, params, metrics, library versions,
                               encoder, and ``files``: {relative path: sha256} of every other file
        vocabulary.csv         the tags (id, label, group, area, training usage), in score-column order
        ensemble.json          ensemble kind (absent: two-step), scorer order, the kind's own data
        reranker.joblib        the fitted HistGradientBoostingClassifier (absent if untrained)
        scorers/<name>/        params.json plus each scorer's arrays (embeddings, TF-IDF matrix, labels...)

A loader resolves the pointer once and reads only that directory, so a swap during a load
cannot mix two bundles; the hashes catch a copied-in-half or corrupted one. A plain bundle
directory (no pointer) loads too.

Bundles contain pickles (pickle and joblib files): load only bundles you trained or trust.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import platform
import re
import secrets
import shutil
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from arttag.catalogue.split import SPLIT_RULE
from arttag.catalogue.text import build_text
from arttag.catalogue.vocabulary import Tag, Vocabulary
from arttag.checksums import file_sha256
from arttag.encoders.base import TextEncoder
from arttag.encoders.choice import variant_of
from arttag.encoders.loader import EncoderKind, open_encoder
from arttag.encoders.prefetch import EmbeddingPrefetch
from arttag.errors import ModelError
from arttag.events import ArtworkMetadata, TagSuggestion
from arttag.model.ensemble import BaseEnsemble, Ranked, load_ensemble, math_threads
from arttag.model.explain import build_suggestions
from arttag.model.tagger import LearningSource, SuggestOptions, TaggedArtwork
from arttag.scorers.base import Batch, Candidates, Corpus
from arttag.settings import EncoderSettings

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
BUNDLE_FORMAT = 1
VERSIONS = "versions"
DEFAULT_KEEP = 3
"""Versions kept behind a pointer after a write (ARTTAG_BUNDLE_KEEP_VERSIONS for ``arttag train``)."""
TMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"
STALE_TMP_S = 24 * 3600.0
_LIBRARIES = ("arttag", "numpy", "scipy", "scikit-learn", "joblib", "pydantic", "onnxruntime", "tokenizers")


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            pass
    return out


def _encoder_info(encoder: TextEncoder) -> dict[str, Any]:
    info: dict[str, Any] = {"name": encoder.name, "dim": encoder.dim}
    inner = getattr(encoder, "inner", encoder)
    manifest = getattr(inner, "manifest", None)
    if manifest is not None and hasattr(manifest, "model_dump"):
        info["manifest"] = manifest.model_dump(mode="json")
    return info


def _hash_files(directory: Path) -> dict[str, str]:
    """{relative path: sha256} of every file in ``directory`` except the manifest."""
    return {
        path.relative_to(directory).as_posix(): file_sha256(path)
        for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST)
    }


def _fsync_dir(directory: Path) -> None:
    # A rename is durable only once its directory is synced; best effort where unsupported.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def versions_dir(pointer: str | Path) -> Path:
    """Where the versions behind ``pointer`` live: ``<pointer's folder>/versions``."""
    return Path(pointer).parent / VERSIONS


def _dir_name(model_version: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", model_version).lstrip(".") or "bundle"
    return name[:200]


def _commit_version(tmp: Path, manifest: dict[str, Any], pointer: Path, keep: int) -> Path:
    """Write the manifest (with its ``files`` hashes) into ``tmp``, rename it into place as a new
    version, point ``pointer`` at it and prune old versions. The manifest is written last, the
    rename makes the version appear complete, the symlink swap makes it current: each atomic."""
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False, default=float) + "\n")
    for path in tmp.rglob("*"):
        if path.is_file():
            path.chmod(0o444)  # a version is never modified once complete
    base = _dir_name(str(manifest["model_version"]))
    for n in range(1, 1000):
        final = tmp.parent / (base if n == 1 else f"{base}-{n}")
        if final.exists():
            continue
        try:
            tmp.rename(final)
        except OSError:  # another writer took the name between the check and the rename
            if final.exists():
                continue
            raise
        break
    else:
        raise ModelError(f"no free version directory for {base!r} in {tmp.parent}", path=str(tmp.parent))
    _fsync_dir(final.parent)
    publish_version(pointer, final)
    prune_versions(pointer, keep)
    return final


def _new_tmp(versions: Path) -> Path:
    versions.mkdir(parents=True, exist_ok=True)
    tmp = versions / f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    return tmp


def write_bundle(out_dir: Path, ensemble: BaseEnsemble, encoder: TextEncoder, params: Any,
                 data: dict[str, Any], report: dict[str, Any], metrics: dict[str, Any] | None,
                 keep: int = DEFAULT_KEEP) -> dict[str, Any]:
    """Write a new immutable version next to ``out_dir`` and point ``out_dir`` at it.

    ``out_dir`` is the pointer (e.g. ``<cache>/bundles/current``); the version goes to
    ``<out_dir's folder>/versions/<model_version>/``. Readers never see half a bundle:
    the pointer moves only once the version is complete. Afterwards all but the newest
    ``keep`` versions are deleted, except any a pointer names.
    """
    out_dir = Path(out_dir)
    tmp = _new_tmp(versions_dir(out_dir))
    try:
        ensemble.vocabulary.to_csv(tmp / "vocabulary.csv")
        ensemble.save(tmp)
        params_json = json.loads(params.model_dump_json())
        files = _hash_files(tmp)
        digest = hashlib.sha256()
        digest.update(json.dumps(files, sort_keys=True).encode())
        digest.update(json.dumps(params_json, sort_keys=True).encode())
        digest.update(encoder.name.encode())
        now = datetime.now(timezone.utc)
        version = params.model_version or f"{params.version_prefix}-{now:%Y%m%d}-{digest.hexdigest()[:8]}"
        manifest = {
            "format": BUNDLE_FORMAT,
            "model_version": version,
            "created_at": now.isoformat(timespec="seconds"),
            "data": data,
            "split_rule": SPLIT_RULE,
            "encoder": _encoder_info(encoder),
            "scorers": [s.name for s in ensemble.scorers],
            "vocabulary_size": len(ensemble.vocabulary),
            "params": params_json,
            "training": report,
            "metrics": metrics,
            "libraries": library_versions(),
            "files": files,
        }
        final = _commit_version(tmp, manifest, out_dir, keep)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("bundle %s written to %s; %s points at it", version, final, out_dir)
    return manifest


def copy_version(pointer: str | Path, model_version: str, *, source: str | Path | None = None,
                 keep: int = DEFAULT_KEEP) -> Path:
    """Publish a copy of the bundle ``source`` (default: the one ``pointer`` names) as a new
    version labelled ``model_version``, with its hashes recomputed; returns the new directory.

    For relabelling a model (a rollback under a new name) and for tests and benchmarks that
    need many versions without training each one.
    """
    pointer = Path(pointer)
    src = resolve_bundle(source if source is not None else pointer)
    manifest = read_manifest(src)
    tmp = _new_tmp(versions_dir(pointer))
    try:
        tmp.rmdir()
        shutil.copytree(src, tmp, ignore=lambda folder, names: [MANIFEST] if Path(folder) == src else [])
        for path in tmp.rglob("*"):
            if path.is_file():
                path.chmod(0o644)
        verify_bundle(tmp, manifest)  # the copy is what the source's hashes promise: never bless damage
        manifest = {**manifest, "model_version": model_version, "copied_from": manifest["model_version"],
                    "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "files": manifest.get("files") or _hash_files(tmp)}
        final = _commit_version(tmp, manifest, pointer, keep)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("bundle %s copied from %s to %s; %s points at it", model_version, src, final, pointer)
    return final


def publish_version(pointer: str | Path, version_dir: str | Path) -> None:
    """Point ``pointer`` at the complete bundle ``version_dir``, atomically (a temporary relative
    symlink renamed over the pointer). Also the way to roll back to a kept version.

    A plain bundle directory at ``pointer`` (the layout before versions) is first moved into
    ``versions/``; a load in that instant finds no bundle and says so, it never mixes two.
    """
    pointer, version_dir = Path(pointer), Path(version_dir)
    read_manifest(version_dir)  # refuse to point at something that is not a bundle
    pointer.parent.mkdir(parents=True, exist_ok=True)
    if pointer.is_dir() and not pointer.is_symlink():
        legacy = read_manifest(pointer).get("model_version", "legacy")
        versions = versions_dir(pointer)
        versions.mkdir(exist_ok=True)
        moved = versions / _dir_name(f"{legacy}-{secrets.token_hex(2)}")
        pointer.rename(moved)
        log.warning("moved the plain bundle %s to %s (bundles are versions behind a pointer now)",
                    pointer, moved)
    target = os.path.relpath(version_dir, pointer.parent)
    tmp = pointer.with_name(f".{pointer.name}.{os.getpid()}-{secrets.token_hex(4)}")
    os.symlink(target, tmp, target_is_directory=True)
    try:
        os.replace(tmp, pointer)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(pointer.parent)


def list_versions(pointer: str | Path) -> list[Path]:
    """The complete versions behind ``pointer``, oldest first (by when their manifest was written)."""
    versions = versions_dir(pointer)
    if not versions.is_dir():
        return []
    found = []
    for d in versions.iterdir():
        if d.name.startswith(".") or d.is_symlink() or not d.is_dir():
            continue
        try:
            found.append(((d / MANIFEST).stat().st_mtime_ns, d.name, d))
        except FileNotFoundError:
            continue
    return [d for _, _, d in sorted(found)]


def _named_by_pointers(folder: Path) -> set[Path]:
    named = set()
    for entry in folder.iterdir():
        if entry.is_symlink():
            try:
                named.add(entry.resolve(strict=True))
            except (OSError, RuntimeError):
                continue
    return named


def prune_versions(pointer: str | Path, keep: int = DEFAULT_KEEP) -> list[Path]:
    """Delete all but the newest ``keep`` versions behind ``pointer``; never one that a pointer
    (any symlink next to ``pointer``) names. Returns the deleted directories.

    Each is first renamed away, so a loader that resolved it just before sees it vanish whole
    (and :func:`load_tagger` resolves the pointer again) instead of half-deleted.
    """
    if keep < 1:
        raise ValueError("keep at least one version")
    pointer = Path(pointer)
    versions = versions_dir(pointer)
    protected = _named_by_pointers(pointer.parent)
    removed = []
    for d in list_versions(pointer)[:-keep]:
        if d.resolve() in protected:
            continue
        trash = versions / f"{TRASH_PREFIX}{d.name}-{secrets.token_hex(4)}"
        try:
            d.rename(trash)
        except OSError:
            continue  # another writer pruned it first
        shutil.rmtree(trash, ignore_errors=True)
        removed.append(d)
    # temporary folders of writers that died long ago
    if versions.is_dir():
        for d in versions.iterdir():
            if d.name.startswith((TMP_PREFIX, TRASH_PREFIX)):
                try:
                    if time.time() - d.stat().st_mtime > STALE_TMP_S:
                        shutil.rmtree(d, ignore_errors=True)
                except FileNotFoundError:
                    pass
    if removed:
        log.info("pruned bundle versions %s (keeping the newest %d)", ", ".join(d.name for d in removed), keep)
    return removed


def resolve_bundle(path: str | Path) -> Path:
    """The bundle directory ``path`` names right now: a pointer is followed (once per link, so
    a swap after this call changes nothing for the caller); a plain bundle directory is itself."""
    path = Path(path)
    directory = path
    for _ in range(8):
        if not directory.is_symlink():
            break
        try:
            target = Path(os.readlink(directory))
        except FileNotFoundError:  # swapped or removed between the check and the read
            continue
        directory = target if target.is_absolute() else directory.parent / target
    if not (directory / MANIFEST).is_file():
        raise ModelError(f"no model bundle at {path} (run `arttag train`)", path=str(path))
    # realpath settles any '..' and linked parent folders; the version folder itself is no link
    return directory if directory == path else Path(os.path.realpath(directory))


def read_manifest(bundle_dir: str | Path) -> dict[str, Any]:
    """The manifest of the bundle ``bundle_dir`` names (a pointer or a bundle directory)."""
    path = resolve_bundle(bundle_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"no model bundle at {bundle_dir} (run `arttag train`)", path=str(bundle_dir)) from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path}: {exc}", path=str(path)) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise ModelError(f"{path}: bundle format {found} is not {BUNDLE_FORMAT}", path=str(path))
    return manifest


def verify_bundle(directory: str | Path, manifest: dict[str, Any] | None = None) -> int:
    """Check every file the manifest's ``files`` map lists against its sha256; returns the bytes
    hashed (0 for a bundle written before hashes were recorded, which is not verified).

    Files the map does not list (a ``reference_profile.json`` copied in later) are not checked.
    """
    directory = Path(directory)
    manifest = manifest if manifest is not None else read_manifest(directory)
    files = manifest.get("files")
    if files is None:
        return 0
    if not isinstance(files, dict):
        raise ModelError(f"bundle {directory}: the manifest's files map is malformed", path=str(directory))
    total = 0
    root = directory.resolve()
    for rel, expected in files.items():
        path = directory / rel
        if not path.resolve().is_relative_to(root):
            raise ModelError(f"bundle {directory}: {rel} lies outside the bundle", path=str(directory))
        try:
            actual = file_sha256(path)
            total += path.stat().st_size
        except FileNotFoundError:
            raise ModelError(f"bundle {directory} is incomplete: {rel} is missing",
                             path=str(directory), file=rel) from None
        except OSError as exc:
            raise ModelError(f"bundle {directory}: cannot read {rel}: {exc}", path=str(directory), file=rel) from exc
        if actual != expected:
            raise ModelError(f"bundle {directory}: {rel} does not match the sha256 in its manifest "
                             "(corrupt or modified; retrain or roll back)", path=str(directory), file=rel)
    return total


class BundleTagger:
    """A loaded bundle: implements :class:`arttag.model.tagger.Tagger` and :class:`arttag.model.tagger.TagCatalogue`
    (the vocabulary and a semantic tag search, for the API), and exposes the encoder.

    It also learns online (:meth:`learn`, :meth:`learn_from`): artworks with curated tags become
    neighbours of the neighbour scorers. Learning and suggesting take one lock, so a batch is
    scored and explained by one state of the scorers; a followed source's new artworks are
    learned at the start of the next batch, in the serving thread.
    """

    def __init__(self, directory: Path, manifest: dict[str, Any], ensemble: BaseEnsemble, encoder: TextEncoder | None,
                 batch_size: int = 256) -> None:
        self.directory = directory
        self.manifest = manifest
        self.ensemble = ensemble
        self.encoder = encoder
        self.batch_size = batch_size
        self._prefetch = EmbeddingPrefetch(encoder) if encoder is not None else None
        self._lock = threading.RLock()
        self._source: LearningSource | None = None
        self._position = 0
        self.learned: set[str] = set()
        """Ids of the artworks learned online with tags."""

    @property
    def model_version(self) -> str:
        return str(self.manifest["model_version"])

    @property
    def vocabulary(self) -> Vocabulary:
        return self.ensemble.vocabulary

    def _batch(self, artworks: Sequence[ArtworkMetadata]) -> Batch:
        batch = Batch.from_metadata(artworks)
        if self.ensemble.needs_embeddings:
            if self.encoder is None:
                raise ModelError("this bundle needs an encoder")
            assert self._prefetch is not None
            batch.embeddings = self._prefetch.encode(batch.texts)
        return batch

    def prefetch(self, artworks: Sequence[ArtworkMetadata]) -> int:
        """Encode ``artworks`` ahead of the :meth:`suggest` that will need them (from another
        thread, while this tagger scores an earlier batch: :mod:`arttag.encoders.prefetch`);
        how many texts were encoded. Takes no lock: encoding reads no scorer state."""
        if self._prefetch is None or not self.ensemble.needs_embeddings:
            return 0
        return self._prefetch.fill([build_text(m) for m in artworks])

    def rank(self, artworks: Sequence[ArtworkMetadata]) -> tuple[Batch, list[Candidates], list[Ranked]]:
        """Both steps of the ensemble, with every per-source score (for evaluation and explanations)."""
        with self._lock:
            self._catch_up()
            batch = self._batch(artworks)
            with math_threads(self.ensemble.threads):
                ranked, cands = self.ensemble.rank(batch)
            return batch, cands, ranked

    def suggest(self, artworks: Sequence[ArtworkMetadata], options: SuggestOptions | None = None) -> list[list[TagSuggestion]]:
        options = options or SuggestOptions()
        out: list[list[TagSuggestion]] = []
        for start in range(0, len(artworks), self.batch_size):
            part = list(artworks[start:start + self.batch_size])
            with self._lock:  # explanations read the scorers' state: no learning in between
                batch, cands, ranked = self.rank(part)
                with math_threads(self.ensemble.threads):
                    out += build_suggestions(self.ensemble, part, batch, cands, ranked, options)
        return out

    # -- online learning -------------------------------------------------------

    def learn(self, examples: Sequence[TaggedArtwork]) -> int:
        """Make ``examples`` tagged neighbours of every scorer that has neighbours
        (:meth:`arttag.scorers.base.Scorer.learn`), now, without retraining; returns how many
        artworks changed. An artwork learned again replaces its earlier entry; one with no tags
        (of this bundle's vocabulary) is forgotten. Tags the vocabulary lacks are left out."""
        newest: dict[str, TaggedArtwork] = {}
        for example in examples:
            newest.pop(example.artwork_id, None)
            newest[example.artwork_id] = example
        if not newest:
            return 0
        items = list(newest.values())
        vocab = self.vocabulary
        rows, cols = [], []
        for i, example in enumerate(items):
            for tag_id in example.tag_ids:
                if tag_id in vocab:
                    rows.append(i)
                    cols.append(vocab.index(tag_id))
        labels = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(items), len(vocab)))
        with self._lock:
            batch = self._batch([e.artwork for e in items])
            corpus = Corpus(batch.texts, batch.fields, batch.embeddings, batch.accession_numbers,
                            ids=[e.artwork_id for e in items], titles=[e.artwork.title for e in items],
                            labels=labels)
            for scorer in self.ensemble.scorers:
                scorer.learn(corpus)
            counts = np.diff(labels.indptr)
            for example, count in zip(items, counts):
                (self.learned.add if count else self.learned.discard)(example.artwork_id)
        log.debug("model %s learned %d artwork(s) online (%d in all)", self.model_version, len(items),
                  len(self.learned))
        return len(items)

    def learn_from(self, source: LearningSource) -> int:
        """Follow ``source``: learn what it holds now (returns how many artworks), and what it
        gains later at the start of each next batch."""
        with self._lock:
            self._source, self._position = source, 0
            return self._catch_up()

    def _catch_up(self) -> int:
        if self._source is None:
            return 0
        examples, position = self._source.examples_since(self._position)
        learned = self.learn(examples) if examples else 0
        self._position = position
        return learned

    def search_tags_semantic(self, query: str, limit: int = 20) -> list[tuple[Tag, float]]:
        """Tags whose text is closest in meaning to ``query`` (cosine of embeddings), best first."""
        from arttag.scorers.semantic import SemanticScorer

        try:
            semantic = self.ensemble.scorer("semantic", SemanticScorer)
        except KeyError:
            raise ModelError("this bundle has no semantic scorer") from None
        if not query.strip():
            return []
        if self.encoder is None:
            raise ModelError("semantic tag search needs an encoder")
        vector = np.asarray(self.encoder.encode([query]), dtype=np.float32)[0]
        return [(self.vocabulary.tags[i], s) for i, s in semantic.search(vector, limit)]


def open_tagger(bundle_ref: str | Path, settings: EncoderSettings | None = None, *,
                kind: EncoderKind = "onnx", reuse: TextEncoder | None = None,
                encoder: TextEncoder | None = None,
                verify: bool = True, bulk: bool = False) -> BundleTagger:
    """The one way a process opens the tagger of a bundle (worker, API, CLI, benchmarks).

    ``bundle_ref`` is a pointer or a bundle directory. The encoder is chosen by
    :func:`bundle_encoder`: ``reuse`` (a hot reload's previous encoder) when the bundle names
    it, the hashing fake when the bundle was trained with it, else the ONNX encoder from
    ``settings``; ``kind="hashing"`` never opens ONNX (a bundle that needs it is refused).
    ``encoder``: an encoder the caller holds and must serve with (the demo's, a benchmark's
    replay of recorded vectors): used as given, and a bundle trained with another encoder is
    refused (:class:`ModelError`) where ``reuse`` would fall back to the bundle's own.
    ``verify=False`` skips the check of the files against the manifest's hashes.

    Example::

        tagger = open_tagger(settings.bundle_dir, settings.encoder, kind=settings.encoder_kind)
    """
    wanted = encoder if encoder is not None else settings if kind == "onnx" else None
    return load_tagger(bundle_ref, wanted, reuse=reuse, verify=verify, bulk=bulk)


def bundle_encoder(manifest: dict[str, Any], encoder: TextEncoder | EncoderSettings | None,
                   reuse: TextEncoder | None = None, bulk: bool = False) -> TextEncoder | None:
    """The encoder a bundle is loaded with, chosen here and nowhere else.

    ``reuse`` when its name is the bundle's encoder's; an encoder instance as given (its name is
    checked by the loader); a fresh hashing fake of the bundle's size when the bundle names the
    fake; the ONNX encoder for :class:`EncoderSettings`; None otherwise (the bundle must not need
    embeddings). With ``bulk`` and ``bulk_device`` set, an fp32 bundle gets the torch bulk
    encoder (:mod:`arttag.encoders.torch_bulk`), which reproduces only the fp32 export.
    """
    trained_with = str(manifest["encoder"]["name"])
    if reuse is not None and reuse.name == trained_with:
        return reuse
    if encoder is not None and not isinstance(encoder, EncoderSettings):
        return encoder
    if trained_with.startswith("hashing-"):
        return open_encoder("hashing", dim=int(manifest["encoder"]["dim"]))
    if encoder is None:
        return None
    if bulk and encoder.bulk_device:
        if variant_of(trained_with) == "fp32":
            from arttag.encoders.torch_bulk import open_bulk_encoder

            return open_bulk_encoder(encoder)
        log.warning("bulk encoder not used: bundle embeddings made with %s, which only that ONNX export "
                    "reproduces (the bulk encoder computes fp32's)", trained_with)
    # variant=auto/measure follows the bundle: only the variant that made its embeddings fits them.
    return open_encoder("onnx", encoder, bundle_variant=variant_of(trained_with))


def load_tagger(bundle_dir: str | Path, encoder: TextEncoder | EncoderSettings | None = None, *,
                reuse: TextEncoder | None = None, verify: bool = True, bulk: bool = False) -> BundleTagger:
    """Load a bundle written by ``arttag train`` / :func:`arttag.model.training.train_bundle`.

    ``bundle_dir`` is a pointer or a bundle directory; it is resolved once and everything is
    read from that one directory (``tagger.directory``), after checking its files against the
    manifest's hashes (``verify=False`` skips that). If retention deletes the version while it
    is being read, the pointer is resolved again.

    ``encoder`` is an encoder instance, or :class:`EncoderSettings` to load the ONNX
    encoder, or None; :func:`bundle_encoder` decides (processes call :func:`open_tagger`).
    The encoder's name must match the one the bundle was trained with (mixing embedding
    spaces breaks every similarity).
    """
    for attempt in range(3):
        directory = resolve_bundle(bundle_dir)
        try:
            return _load_directory(directory, encoder, verify, reuse, bulk)
        except Exception:
            if directory.exists() or attempt == 2:
                raise
            log.info("bundle version %s was removed while loading; resolving %s again", directory, bundle_dir)
    raise AssertionError("unreachable")


def _load_directory(directory: Path, wanted: TextEncoder | EncoderSettings | None, verify: bool,
                    reuse: TextEncoder | None = None, bulk: bool = False) -> BundleTagger:
    manifest = read_manifest(directory)
    if verify:
        verify_bundle(directory, manifest)
    trained_with = manifest["encoder"]["name"]
    encoder = bundle_encoder(manifest, wanted, reuse, bulk)
    if encoder is not None and encoder.name != trained_with:
        raise ModelError(
            f"bundle {directory} was trained with encoder {trained_with!r}, not {encoder.name!r}",
            path=str(directory),
        )
    vocabulary = Vocabulary.from_csv(directory / "vocabulary.csv")
    ensemble = load_ensemble(directory, vocabulary)
    if ensemble.needs_embeddings and encoder is None:
        raise ModelError(f"bundle {directory} needs the encoder {trained_with!r}", path=str(directory))
    tagger = BundleTagger(directory, manifest, ensemble, encoder)
    settle_long_lived()
    return tagger


def settle_long_lived() -> None:
    """Collects what is already garbage, then moves every object alive out of the garbage
    collector's full passes (:func:`gc.freeze`).

    A loaded bundle holds lists of millions of references (each voting scorer's training ids,
    titles and tag arrays, the vectorizers' feature names), which every full collection
    traversed: about 30 ms on a quiet core for the full-Tate bundle, every batch or two of
    suggestions, charged to whichever stage allocated last. Frozen objects are still freed
    when nothing refers to them any more; only garbage in reference cycles among them waits
    for the next load, which unfreezes them first.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
