"""Model bundles: a versioned directory holding a trained ensemble, and the Tagger that serves it.

Layout (``arttag train`` writes it; :func:`load_tagger` reads it, without torch)::

    manifest.json          model_version, data hash, split rule, params, metrics, library versions, encoder
    vocabulary.csv         the tags (id, label, group, area, training usage), in score-column order
    ensemble.json          ensemble kind (absent: two-step), scorer order, the kind's own data (re-ranker feature names)
    reranker.joblib        the fitted HistGradientBoostingClassifier (absent if untrained)
    scorers/<name>/        params.json plus each scorer's arrays (embeddings, TF-IDF matrix, labels...)

Bundles contain pickles (joblib): load only bundles you trained or trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from arttag.checksums import update_from_file
from arttag.encoders.base import TextEncoder
from arttag.ensemble import BaseEnsemble, Ranked, load_ensemble
from arttag.errors import ModelError
from arttag.events import ArtworkMetadata, TagSuggestion
from arttag.explain import build_suggestions
from arttag.scorers.base import Batch, Candidates
from arttag.settings import EncoderSettings
from arttag.split import SPLIT_RULE
from arttag.tagger import SuggestOptions
from arttag.vocabulary import Tag, Vocabulary

MANIFEST = "manifest.json"
BUNDLE_FORMAT = 1
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


def _content_hash(directory: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST):
        h.update(path.relative_to(directory).as_posix().encode())
        update_from_file(h, path)
    return h.hexdigest()


def write_bundle(out_dir: Path, ensemble: BaseEnsemble, encoder: TextEncoder, params: Any,
                 data: dict[str, Any], report: dict[str, Any], metrics: dict[str, Any] | None) -> dict[str, Any]:
    """Write the bundle next to ``out_dir`` and swap it in, so readers never see half a bundle."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    ensemble.vocabulary.to_csv(tmp / "vocabulary.csv")
    ensemble.save(tmp)
    params_json = json.loads(params.model_dump_json())
    digest = hashlib.sha256()
    digest.update(_content_hash(tmp).encode())
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
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False, default=float) + "\n")
    old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    if out_dir.exists():
        out_dir.rename(old)
    tmp.rename(out_dir)
    if old.exists():
        shutil.rmtree(old)
    return manifest


def read_manifest(bundle_dir: str | Path) -> dict[str, Any]:
    path = Path(bundle_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"no model bundle at {bundle_dir} (run `arttag train`)", path=str(bundle_dir)) from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path}: {exc}", path=str(path)) from exc
    if manifest.get("format") != BUNDLE_FORMAT:
        raise ModelError(f"{path}: bundle format {manifest.get('format')} is not {BUNDLE_FORMAT}", path=str(path))
    return manifest


class BundleTagger:
    """A loaded bundle: implements :class:`arttag.tagger.Tagger` and :class:`arttag.tagger.TagCatalogue`
    (the vocabulary and a semantic tag search, for the API), and exposes the encoder."""

    def __init__(self, directory: Path, manifest: dict[str, Any], ensemble: BaseEnsemble, encoder: TextEncoder | None,
                 batch_size: int = 256) -> None:
        self.directory = directory
        self.manifest = manifest
        self.ensemble = ensemble
        self.encoder = encoder
        self.batch_size = batch_size

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
            batch.embeddings = np.asarray(self.encoder.encode(batch.texts), dtype=np.float32)
        return batch

    def rank(self, artworks: Sequence[ArtworkMetadata]) -> tuple[Batch, list[Candidates], list[Ranked]]:
        """Both steps of the ensemble, with every per-source score (for evaluation and explanations)."""
        batch = self._batch(artworks)
        ranked, cands = self.ensemble.rank(batch)
        return batch, cands, ranked

    def suggest(self, artworks: Sequence[ArtworkMetadata], options: SuggestOptions | None = None) -> list[list[TagSuggestion]]:
        options = options or SuggestOptions()
        out: list[list[TagSuggestion]] = []
        for start in range(0, len(artworks), self.batch_size):
            part = list(artworks[start:start + self.batch_size])
            batch, cands, ranked = self.rank(part)
            out += build_suggestions(self.ensemble, part, batch, cands, ranked, options)
        return out

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


def load_tagger(bundle_dir: str | Path, encoder: TextEncoder | EncoderSettings | None = None) -> BundleTagger:
    """Load a bundle written by ``arttag train`` / :func:`arttag.training.train_bundle`.

    ``encoder`` is an encoder instance, or :class:`EncoderSettings` to load the ONNX
    encoder, or None: then a bundle trained with the hashing fake gets a fresh one,
    and any other bundle must not need embeddings. The encoder's name must match
    the one the bundle was trained with (mixing embedding spaces breaks every similarity).
    """
    directory = Path(bundle_dir)
    manifest = read_manifest(directory)
    trained_with = manifest["encoder"]["name"]
    if isinstance(encoder, EncoderSettings):
        from arttag.encoders import load_encoder

        encoder = load_encoder(encoder)
    if encoder is None and str(trained_with).startswith("hashing-"):
        from arttag.encoders.hashing import HashingEncoder

        encoder = HashingEncoder(int(manifest["encoder"]["dim"]))
    if encoder is not None and encoder.name != trained_with:
        raise ModelError(
            f"bundle {directory} was trained with encoder {trained_with!r}, not {encoder.name!r}",
            path=str(directory),
        )
    vocabulary = Vocabulary.from_csv(directory / "vocabulary.csv")
    ensemble = load_ensemble(directory, vocabulary)
    if ensemble.needs_embeddings and encoder is None:
        raise ModelError(f"bundle {directory} needs the encoder {trained_with!r}", path=str(directory))
    return BundleTagger(directory, manifest, ensemble, encoder)
