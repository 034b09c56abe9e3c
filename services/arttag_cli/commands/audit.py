"""``arttag audit CATALOGUE --out DIR``: data-quality audit of a catalogue's tags (audit.html and audit.json)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from arttag.errors import ConfigurationError

from arttag_cli.options import fraction


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "audit", help="data-quality audit of a catalogue's tags",
        description="Write DIR/audit.html (self-contained, plots embedded) and DIR/audit.json: coverage, tag "
        "usage, near-duplicate tags, labelling consistency, and with --bundle likely overlooked tags "
        "and per-tag learnability.",
    )
    p.add_argument("catalogue", type=Path, help="catalogue file (Tate-format JSON lines, optionally gzipped)")
    p.add_argument("--out", type=Path, required=True, help="folder for audit.html and audit.json")
    p.add_argument("--bundle", type=Path, default=None,
                   help="trained model bundle; without it the overlooked-tags and learnability sections are skipped")
    p.add_argument("--encoder", choices=("onnx", "hashing"), default="onnx",
                   help="text encoder for tag and artwork embeddings (default: onnx, the real MPNet; "
                   "hashing is a fast fake for dry runs)")
    p.add_argument("--tag-similarity", type=fraction("--tag-similarity"), default=None,
                   help="cosine from which two tag labels are near-duplicates (default 0.85; "
                   "not used with --encoder hashing)")
    p.add_argument("--artwork-similarity", type=fraction("--artwork-similarity"), default=0.95,
                   help="cosine from which two artworks of a block are near-identical (default 0.95)")
    p.add_argument("--prefilter-similarity", type=fraction("--prefilter-similarity"), default=0.9,
                   help="cosine of hashed words (group title left out) from which two artworks of a block are "
                   "compared by the encoder at all (default 0.9)")
    p.add_argument("--min-confidence", type=fraction("--min-confidence"), default=0.5,
                   help="confidence from which a missing suggestion is a likely overlooked tag (default 0.5)")
    p.add_argument("--learn-threshold", type=fraction("--learn-threshold"), default=0.5,
                   help="confidence from which a suggestion counts as predicted for dev precision/recall (default 0.5)")
    p.add_argument("--overlooked-on", choices=("dev", "all"), default="dev",
                   help="look for overlooked tags on the dev split (default; the model never saw it) or all")
    p.add_argument("--embedding-cache", type=Path, default=None,
                   help="folder of .npz embedding caches written by training (<encoder name>.npz); "
                   "reused when present so known texts are not encoded again (default: <user cache>/arttag/embeddings, "
                   "as for train)")
    p.add_argument("--save-embeddings", action="store_true",
                   help="after the audit, save what was encoded to audit-<encoder name>.npz in the cache folder "
                   "(training's own file is never written), so the next audit is faster")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_audit)


def _encoder(kind: str):
    from arttag.encoders import open_encoder
    from arttag.settings import CliSettings

    try:
        return open_encoder(kind, CliSettings().encoder)
    except ImportError as exc:
        raise ConfigurationError(
            "the ONNX encoder is not available in this installation; use --encoder hashing"
        ) from exc


def _cache_files(encoder, folder: Path) -> tuple[Path, Path]:
    """Training's cache file for this encoder, and the audit's own."""
    import re

    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", encoder.name) + ".npz"
    return folder / name, folder / f"audit-{name}"


def _warm_cache(encoder, folder: Path) -> None:
    """Load cached embeddings into the encoder's cache (read only: the files stay as they are)."""
    import logging

    from arttag.encoders.cache import CachedEncoder
    from arttag.errors import ModelError

    if not isinstance(encoder, CachedEncoder):
        return
    for path in _cache_files(encoder, folder):
        if path.exists():
            try:
                encoder.load(path)
            except ModelError as exc:
                logging.getLogger(__name__).warning("embedding cache not used: %s", exc)


def _audit(args: argparse.Namespace) -> int:
    from arttag.quality.audit import AuditOptions, run_audit
    from arttag.quality.audit.report import write_report

    from arttag_cli.options import default_embedding_cache

    started = time.perf_counter()
    args.embedding_cache = args.embedding_cache or default_embedding_cache()
    encoder = _encoder(args.encoder)
    _warm_cache(encoder, args.embedding_cache)
    tagger = None
    if args.bundle is not None:
        from arttag.model.bundle import open_tagger
        from arttag.settings import CliSettings

        tagger = open_tagger(args.bundle, CliSettings().encoder, kind=args.encoder, reuse=encoder)
    options = AuditOptions(
        tag_similarity=0.85 if args.tag_similarity is None else args.tag_similarity,
        artwork_similarity=args.artwork_similarity,
        prefilter_similarity=args.prefilter_similarity,
        min_confidence=args.min_confidence,
        learn_threshold=args.learn_threshold,
        overlooked_on=args.overlooked_on,
        semantic_tags=args.encoder != "hashing",
        progress=not args.no_progress,
    )
    audit = run_audit(args.catalogue, encoder, tagger, options)
    json_path, html_path = write_report(audit, args.out)
    # The live monitor compares traffic with this; copy it into the bundle folder to use it there.
    from arttag.quality.profile import ReferenceProfile, save_reference_profile

    print(f"{html_path}\n{json_path}")
    if "reference_profile" in audit:
        print(save_reference_profile(
            ReferenceProfile.from_dict(audit["reference_profile"]), args.out / "reference_profile.json"
        ))
    from arttag.encoders.cache import CachedEncoder

    if args.save_embeddings and isinstance(encoder, CachedEncoder):
        print(encoder.save(_cache_files(encoder, args.embedding_cache)[1]))
    rows = audit["rows"]
    print(f"{rows['good']} artworks audited, {rows['bad']} bad rows skipped, "
          f"{time.perf_counter() - started:.1f}s")
    return 0
