"""What the ensemble's errors are, per evaluation view (:mod:`arttag.quality.errors`): where each
true tag was lost (outside the vocabulary, never proposed, ranked below five, found), the wrong
top-five suggestions per tag area, places suggested against the place the title names, and how
much a few series weigh. Writes ``bench/results/quality_errors.json``.

* random view: ``--bundle`` (trained on the whole catalogue's standard split), its dev artworks;
* new acquisitions: ``--new-acquisitions-bundle`` (trained on the artworks acquired before 2000),
  the artworks acquired from 2000 on.

Each view also on its isolated artworks and on those by an artist new to training
(:mod:`arttag.quality.views`)::

    nice -n 5 .venv/bin/python bench/quality_errors.py --catalogue ../shared/data/tate/artworks.jsonl.gz \\
        --bundle BUNDLE --new-acquisitions-bundle BUNDLE_BEFORE_2000 --embedding-cache ~/.cache/arttag/embeddings
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import write_result
from machine_info import machine_details, portable_command

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CATALOGUE = REPO.parent / "shared" / "data" / "tate" / "artworks.jsonl.gz"
DEFAULT_OUT = REPO / "bench" / "results" / "quality_errors.json"
VIEW_SPLITS = {"random": "dev", "new_acquisitions": "new-acquisitions"}
"""Each view's ``arttag evaluate --split``."""


def analyse_view(bundle: Path, records: list[Any], view: str, cache: Path | None, batch_size: int = 256) -> dict:
    from arttag.catalogue.text import build_text
    from arttag.model.bundle import open_tagger
    from arttag.model.training import embed_texts, evaluation_records, make_batch
    from arttag.quality.errors import RankedArtwork, error_breakdown
    from arttag.quality.views import view_masks
    from arttag.settings import CliSettings
    from tqdm import tqdm

    tagger = open_tagger(bundle, CliSettings().encoder)
    fitted_on = tagger.manifest.get("training", {}).get("scorers_fitted_on", ["train"])
    held_out, training, _ = evaluation_records(records, VIEW_SPLITS[view], fitted_on)
    texts = [build_text(r.metadata) for r in held_out]
    embeddings = None
    if tagger.ensemble.needs_embeddings:
        bare = getattr(tagger.encoder, "inner", tagger.encoder)
        embeddings = embed_texts(bare, texts, cache, progress=True)
    ranked: list[Any] = []
    t0 = time.perf_counter()
    for start in tqdm(range(0, len(held_out), batch_size), desc=f"ranking ({view})", unit="batch", file=sys.stdout):
        part = held_out[start:start + batch_size]
        batch = make_batch(part, None if embeddings is None else embeddings[start:start + batch_size])
        results, _ = tagger.ensemble.rank(batch)
        ranked += [RankedArtwork(rec, [int(t) for t in r.tags]) for rec, r in zip(part, results)]
    rank_s = time.perf_counter() - t0
    vocab = tagger.vocabulary
    out: dict[str, Any] = {"bundle": tagger.model_version, "scorers_fitted_on": list(fitted_on),
                           "training_artworks": len(training), "rank_s": rank_s,
                           "all": error_breakdown(ranked, vocab, training)}
    masks = view_masks([r.metadata for r in held_out], [r.metadata for r in training])
    for name, flags in masks.items():
        out[name] = error_breakdown([a for a, f in zip(ranked, flags) if f], vocab, training)
    return out


def main(argv: list[str] | None = None) -> int:
    from arttag.catalogue.records import load_catalogue

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--catalogue", type=Path, default=DEFAULT_CATALOGUE)
    p.add_argument("--bundle", type=Path, required=True, help="bundle of the random view")
    p.add_argument("--new-acquisitions-bundle", type=Path, default=None,
                   help="bundle trained on the artworks acquired before 2000")
    p.add_argument("--embedding-cache", type=lambda v: Path(v).expanduser(), default=None)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    records, _ = load_catalogue(args.catalogue)
    views = {"random": analyse_view(args.bundle, records, "random", args.embedding_cache)}
    if args.new_acquisitions_bundle:
        views["new_acquisitions"] = analyse_view(args.new_acquisitions_bundle, records, "new_acquisitions",
                                                 args.embedding_cache)
    headline: dict[str, Any] = {}
    for view, parts in views.items():
        for part in ("all", "isolated", "isolated_new_artist"):
            if part not in parts:
                continue
            b = parts[part]
            key = view if part == "all" else f"{view}_{part}"
            headline[f"{key}_artworks"] = b["artworks"]
            for fate, share in b["true_share_by_fate"].items():
                headline[f"{key}_true_share_{fate}"] = share
            headline[f"{key}_place_contradictions_share_of_wrong"] = b["place_contradictions_share_of_wrong"]
            headline[f"{key}_top_10_artists_share_of_true_pairs"] = b["series"]["top_10_artists_share_of_true_pairs"]
    result = {
        "headline": headline,
        "views": views,
        "command": portable_command("bench/quality_errors.py", sys.argv[1:] if argv is None else argv),
        "catalogue": str(args.catalogue.name),
        "total_s": time.perf_counter() - t0,
        "machine": machine_details(),
        "what": "true (artwork, tag) pairs by where they were lost; wrong top-5 suggestions by tag area; "
                "places suggested against the places the text names; the weight of the ten largest series",
    }
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
