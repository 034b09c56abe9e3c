"""Tagging quality with the int8 encoder vs the fp32 encoder: same data, same training, only the embeddings differ.

1. reads the catalogue and keeps the first ``--limit`` tagged artworks in the order of
   ``sha256("arttag-split-v1:" + id)[8:16]``: the project's split hash, but digits that
   :func:`arttag.catalogue.split.split_of` does not use (it reads ``[:8]``), so the subset is a
   uniform sample and dev / rerank / train keep their 10 / 15 / 75 % proportions;
2. for each variant (``fp32``, ``int8`` of the exported all-mpnet-base-v2, through
   :class:`arttag.encoders.onnx.OnnxEncoder`, the production encoder), trains the ensemble
   with :func:`arttag.model.training.train_ensemble` (default :class:`~arttag.model.training.TrainParams`)
   and ranks the tagged dev artworks with it;
3. scores every dev artwork with :func:`arttag.quality.ranking.ranking_metrics` (P@1, F1@5, nDCG@10
   of the top 10), reports each variant's mean and the int8-minus-fp32 difference with a
   paired bootstrap 95 % interval over dev artworks (the same resampled artworks for both
   variants, ``--bootstrap`` resamples).

Embeddings go through the training code's on-disk cache (``--cache-dir``, keyed by text
hash and the model file's sha256), so a rerun only trains and ranks.

    nice -n 5 .venv/bin/python bench/encoder_quality.py [CATALOGUE] [--limit 8000]

Prints a table and writes ``bench/results/encoder_quality.json`` (a ``headline`` object,
per-variant metrics, machine details).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from machine_info import machine_details

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CATALOGUE = REPO.parent / "shared" / "data" / "tate" / "artworks.jsonl.gz"
METRICS = ("p_at_1", "f1_at_5", "ndcg_at_10")

log = logging.getLogger("bench.encoder_quality")


def subset_key(artwork_id: str) -> int:
    """Order of the subset: the split hash's digits 8-16, independent of the split bucket (digits 0-8)."""
    return int(hashlib.sha256(f"arttag-split-v1:{artwork_id}".encode()).hexdigest()[8:16], 16)


def select_subset(records: list, limit: int) -> list:
    tagged = [r for r in records if r.metadata.tags]
    if limit <= 0 or limit >= len(tagged):
        return tagged
    return sorted(tagged, key=lambda r: subset_key(r.artwork_id))[:limit]


def per_artwork(rankings: list[list[int]], gold: list[set[int]]) -> dict[str, np.ndarray]:
    """Each metric of :func:`arttag.quality.ranking.ranking_metrics` for each artwork on its own."""
    from arttag.quality.ranking import ranking_metrics

    rows = [ranking_metrics([r], [g]) for r, g in zip(rankings, gold)]
    return {m: np.array([row[m] for row in rows]) for m in METRICS}


def paired_bootstrap(diff: np.ndarray, resamples: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    means = np.array([diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(resamples)])
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def rank_dev(ensemble, encoder, dev: list, cache_dir: Path, batch_size: int = 512) -> list[list[int]]:
    from arttag.catalogue.text import build_text
    from arttag.model.training import embed_texts, make_batch

    embeddings = embed_texts(encoder, [build_text(r.metadata) for r in dev], cache_dir)
    out: list[list[int]] = []
    for start in range(0, len(dev), batch_size):
        batch = make_batch(dev[start:start + batch_size], embeddings[start:start + batch_size])
        ranked, _ = ensemble.rank(batch)
        out += [r.tags[:10].tolist() for r in ranked]
    return out


def main(argv: list[str] | None = None) -> int:
    from arttag.settings import EncoderSettings

    defaults = EncoderSettings()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("catalogue", type=Path, nargs="?", default=DEFAULT_CATALOGUE)
    ap.add_argument("--limit", type=int, default=8000, help="tagged artworks in the subset (0: all)")
    ap.add_argument("--onnx-dir", type=Path, default=defaults.resolved_onnx_dir)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache-dir", type=Path, default=REPO / ".cache" / "encoder_quality")
    ap.add_argument("--bootstrap", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "encoder_quality.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from arttag.catalogue.records import load_catalogue
    from arttag.encoders.manifest import read_manifest
    from arttag.encoders.onnx import OnnxEncoder
    from arttag.model.training import (
        TrainParams,
        gold_sets,
        split_records,
        train_ensemble,
    )

    started = datetime.now(UTC).isoformat(timespec="seconds")
    records, _ = load_catalogue(args.catalogue)
    subset = select_subset(records, args.limit)
    splits = split_records(subset)
    log.info("%d of %d artworks: %s", len(subset), len(records), {k: len(v) for k, v in splits.items()})
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    params = TrainParams()
    manifest = read_manifest(args.onnx_dir)

    variants: dict[str, dict] = {}
    scores: dict[str, dict[str, np.ndarray]] = {}
    for variant in ("fp32", "int8"):
        encoder = OnnxEncoder(args.onnx_dir, variant, intra_op_threads=args.threads, execution_provider="cpu")
        t0 = time.perf_counter()
        ensemble, report = train_ensemble(subset, encoder, params, args.cache_dir)
        train_s = time.perf_counter() - t0
        gold = gold_sets(splits["dev"], ensemble.vocabulary)
        rankings = rank_dev(ensemble, encoder, splits["dev"], args.cache_dir)
        scores[variant] = per_artwork(rankings, gold)
        variants[variant] = {
            "encoder": encoder.name,
            "model_sha256": manifest.variant(variant).sha256,
            **{m: round(float(scores[variant][m].mean()), 5) for m in METRICS},
            "train_s": round(train_s, 1),
            "timings": {k: round(v, 1) for k, v in report["timings"].items()},
        }
        log.info("%s: %s", variant, {m: variants[variant][m] for m in METRICS})

    diffs = {}
    for m in METRICS:
        d = scores["int8"][m] - scores["fp32"][m]
        diffs[m] = {
            "mean": round(float(d.mean()), 5),
            "ci95": [round(x, 5) for x in paired_bootstrap(d, args.bootstrap, args.seed)],
            "artworks_better": int((d > 0).sum()),
            "artworks_worse": int((d < 0).sum()),
        }
    quant = manifest.variant("int8").quantization or {}
    result = {
        "headline": {
            "int8_minus_fp32_p_at_1": diffs["p_at_1"]["mean"],
            "int8_minus_fp32_p_at_1_ci95": diffs["p_at_1"]["ci95"],
            "int8_minus_fp32_f1_at_5": diffs["f1_at_5"]["mean"],
            "int8_minus_fp32_f1_at_5_ci95": diffs["f1_at_5"]["ci95"],
            "int8_minus_fp32_ndcg_at_10": diffs["ndcg_at_10"]["mean"],
            "int8_minus_fp32_ndcg_at_10_ci95": diffs["ndcg_at_10"]["ci95"],
            "fp32_f1_at_5": variants["fp32"]["f1_at_5"],
            "int8_f1_at_5": variants["int8"]["f1_at_5"],
            "dev_artworks": len(splits["dev"]),
            "subset_artworks": len(subset),
        },
        "variants": variants,
        "difference": diffs,
        "subset": {
            "catalogue": str(args.catalogue),
            "catalogue_artworks": len(records),
            "limit": args.limit,
            "rule": "tagged artworks ordered by int(sha256('arttag-split-v1:'+id)[8:16], 16), first `limit`",
            "splits": {k: len(v) for k, v in splits.items()},
        },
        "method": {
            "metrics": "arttag.quality.ranking.ranking_metrics per dev artwork (top 10 of the ensemble), then averaged",
            "bootstrap": f"{args.bootstrap} paired resamples of dev artworks, seed {args.seed}, percentile interval",
            "train_params": json.loads(params.model_dump_json()),
        },
        "int8_recipe": quant.get("name"),
        "onnx_dir": str(args.onnx_dir),
        "command": "python bench/encoder_quality.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine_details(load_average_at_end=list(os.getloadavg())),
        "started_at": started,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"\nsubset: {len(subset)} artworks, {len(splits['dev'])} dev")
    print(f"{'metric':<12} {'fp32':>8} {'int8':>8} {'int8-fp32':>10}  95% CI (paired bootstrap)")
    for m in METRICS:
        lo, hi = diffs[m]["ci95"]
        print(f"{m:<12} {variants['fp32'][m]:>8.4f} {variants['int8'][m]:>8.4f} {diffs[m]['mean']:>+10.4f}  [{lo:+.4f}, {hi:+.4f}]")
    print("headline: " + json.dumps(result["headline"]))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
