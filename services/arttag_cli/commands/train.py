"""``arttag train | evaluate``: a model bundle from a catalogue, and its figures (``suggest`` has its own module)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from arttag.errors import ArttagError, ConfigurationError
from arttag.settings import CliSettings

from arttag_cli.options import int_range


def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train", help="train a model bundle from a catalogue (JSON lines, optionally gzipped)")
    t.add_argument("catalogue", type=Path, help="catalogue file with tags (Tate-format JSON lines, optionally gzipped)")
    t.add_argument("--out", type=Path, default=None,
                   help="bundle pointer (default: ARTTAG_BUNDLE_DIR); the new version goes to versions/ "
                        "next to it, and the pointer is swapped to it atomically")
    t.add_argument("--encoder", choices=("onnx", "hashing"), default="onnx",
                   help="onnx (default): the exported MPNet (ARTTAG_ENCODER__*); hashing: the dependency-free fake")
    t.add_argument("--model-version", default=None, help="override the derived model version")
    t.add_argument("--params", type=Path, default=None, help="JSON file with TrainParams (scorers, reranker...)")
    t.add_argument("--embedding-cache", type=Path, default=None,
                   help="folder for the .npz embedding cache (default: <user cache>/arttag/embeddings)")
    t.add_argument("--vocabulary", type=Path, default=None, metavar="FILE",
                   help="a thesaurus (CSV, or SKOS in Turtle or RDF/XML): every term becomes suggestable, "
                        "also those no artwork carries yet")
    t.add_argument("--decisions", default=None, metavar="SOURCE",
                   help="curation decisions to learn from: a JSON Lines file of TagDecisionsChanged records, "
                   "or kafka: for the decisions topic (ARTTAG_KAFKA__*), kafka:TOPIC for another; accepted "
                   "tags become labels, rejected ones re-ranker negatives (docs/curation.md)")
    t.add_argument("--no-evaluate", action="store_true", help="skip the dev-split evaluation")
    t.add_argument("--json", type=Path, default=None, dest="json_out",
                   help="write the dev-split figures to this file, as `arttag evaluate --json` does")
    t.set_defaults(func=_train)

    e = sub.add_parser(
        "evaluate", help="evaluate a bundle on a catalogue with tags (its dev split, or all of it)",
        description="Rank every tagged artwork of CATALOGUE (the dev split by default) and compare with its "
        "tags. CATALOGUE is any file `arttag suggest` reads: a Tate-format export, or ArtworkMetadata "
        "objects with tags as JSON, a JSON list or JSON lines, gzipped or not.",
    )
    e.add_argument("catalogue", type=Path,
                   help="artworks with tags: Tate-format JSON lines or ArtworkMetadata JSON / JSON lines (.gz ok)")
    e.add_argument("--split", choices=("dev", "new-acquisitions", "all"), default="dev",
                   help="dev: the artworks training held out (default; honest on the training catalogue); "
                   "new-acquisitions: the artworks acquired from --acquired-from on, for a bundle trained on "
                   "those acquired before; all: every tagged artwork (for a catalogue the bundle was not trained on)")
    e.add_argument("--acquired-from", type=int_range("--acquired-from", 1, 9999), default=None, metavar="YEAR",
                   help="first acquisition year of the new-acquisitions split (default 2000)")
    e.add_argument("--all", action="store_const", const="all", dest="split", help="the same as --split all")
    e.add_argument("--plots", type=Path, default=None, metavar="DIR",
                   help="write precision_recall.png, calibration.png and recall_by_group.png into DIR")
    e.add_argument("--bundle", type=Path, default=None, help="bundle folder (default: ARTTAG_BUNDLE_DIR)")
    e.add_argument("--json", type=Path, default=None, dest="json_out", help="also write every figure to this file")
    e.add_argument("--embedding-cache", type=Path, default=None,
                   help="folder of the .npz embedding cache (default: <user cache>/arttag/embeddings)")
    e.set_defaults(func=_evaluate)


def _encoder(kind: str, settings: CliSettings) -> Any:
    from arttag.encoders import open_encoder

    return open_encoder(kind, settings.encoder)  # type: ignore[arg-type] - argparse restricts the choices


def _cache_dir(arg: Path | None) -> Path:
    from arttag_cli.options import default_embedding_cache

    return arg if arg is not None else default_embedding_cache()


def _train(args: argparse.Namespace) -> int:
    from arttag.model.training import TrainParams, train_bundle

    settings = CliSettings()
    raw: dict[str, Any] = json.loads(args.params.read_text()) if args.params else {}
    if args.model_version:
        raw["model_version"] = args.model_version
    if args.no_evaluate:
        raw["evaluate"] = False
    try:
        params = TrainParams.model_validate(raw)
    except ValueError as exc:
        raise ConfigurationError(f"invalid training parameters: {exc}") from exc
    out = args.out or settings.bundle_dir
    decisions, source = None, None
    if args.decisions:
        from arttag.curation.labels import read_decisions

        decisions, source = read_decisions(args.decisions, settings.kafka)
    manifest = train_bundle(args.catalogue, out, _encoder(args.encoder, settings), params,
                            cache_dir=_cache_dir(args.embedding_cache), progress=True,
                            keep=settings.bundle_keep_versions, vocabulary=args.vocabulary, decisions=decisions,
                            decisions_source=source)
    from arttag.model.bundle import resolve_bundle

    print(f"bundle {manifest['model_version']} written to {resolve_bundle(out)}; {out} points at it")
    data = manifest["data"]
    print(f"catalogue: {data['rows_read']} rows, {data['bad_rows']} bad row(s) skipped")
    for b in data["bad_row_examples"]:
        print(f"  line {b['line']}: {b['error']}")
    used = manifest["training"].get("decisions")
    if used:
        print(f"decisions: {used['records']} record(s) from {used['source']} ({used['bad_records']} bad): "
              f"{used['accepted_labels']} accepted label(s) added, {used['rejected_labels_removed']} catalogued "
              f"tag(s) removed, {used['rejected_negatives']} rejected suggestion(s) as re-ranker negatives, "
              f"{used['unknown_tags']} unknown tag(s), {used['unknown_artworks']} unknown artwork(s)")
    if manifest["metrics"]:
        _print_metrics(manifest["metrics"])
        if args.json_out:
            _write_figures(args.json_out, manifest["metrics"], manifest, args.catalogue, data["rows_read"],
                           data["bad_rows"])
    return 0


def _load(bundle: Path | None, settings: CliSettings) -> Any:
    from arttag.model.bundle import open_tagger

    return open_tagger(bundle or settings.bundle_dir, settings.encoder)


def _read_tagged(path: Path) -> tuple[list[Any], int, int]:
    """Catalogue records from any file `arttag suggest` reads; (records, rows read, bad rows).
    Bad rows and unknown fields are summarised on stderr, not stopped on."""
    from collections import Counter

    from arttag.catalogue.records import CatalogueRecord

    from arttag_cli.artwork_input import read_artworks

    records, bad, rows = [], [], 0
    warnings: Counter[str] = Counter()
    for n, item in enumerate(read_artworks(str(path)), start=1):
        rows += 1
        warnings.update(item.warnings)
        if item.metadata is None:
            bad.append(f"{item.where}: {item.error}")
            continue
        records.append(CatalogueRecord(line=n, artwork_id=item.artwork_id or item.where, metadata=item.metadata))
    for text, count in warnings.most_common():
        print(f"arttag evaluate: warning: {text} ({count} artwork(s))", file=sys.stderr)
    for text in bad[:10]:
        print(f"arttag evaluate: skipped {text}", file=sys.stderr)
    if len(bad) > 10:
        print(f"arttag evaluate: ... {len(bad) - 10} more skipped", file=sys.stderr)
    if not any(r.metadata.tags for r in records):
        raise ArttagError(f"{path}: no artwork with tags to evaluate against")
    return records, rows, len(bad)


def _evaluate(args: argparse.Namespace) -> int:
    from arttag.model.training import evaluate_ensemble

    settings = CliSettings()
    records, rows_read, bad_rows = _read_tagged(args.catalogue)
    tagger = _load(args.bundle, settings)
    fitted_on = tagger.manifest.get("training", {}).get("scorers_fitted_on", ["train"])
    from arttag.quality.views import NEW_ACQUISITIONS_FROM

    collected: dict[str, Any] = {}
    thresholds = ((tagger.manifest.get("training") or {}).get("auto_apply") or {}).get("thresholds")
    result = evaluate_ensemble(tagger.ensemble, tagger.encoder, records,
                               cache_dir=_cache_dir(args.embedding_cache), progress=True, fitted_on=fitted_on,
                               split=args.split, collect=collected, auto_apply=thresholds,
                               acquired_from=args.acquired_from or NEW_ACQUISITIONS_FROM)
    if not result["dev_artworks"]:
        raise ArttagError(f"{args.catalogue}: no tagged artwork in the {args.split} split; try --split all")
    from arttag.model.training import evaluation_records

    evaluated, _, _ = evaluation_records(records, args.split, fitted_on,
                                         args.acquired_from or NEW_ACQUISITIONS_FROM)
    result["seen_in_training"] = seen = len(_learnt_from(tagger) & {r.artwork_id for r in evaluated})
    _print_metrics(result)
    if seen:
        # a person reading p@1 0.94 must know the model had the answers: say it last, where it is read
        print(f"arttag evaluate: warning: {seen} of the {result['dev_artworks']} artworks evaluated are "
              "artworks the bundle learnt from (its neighbour index holds them), so these figures are "
              "optimistic; on the bundle's training catalogue --split dev (the default) holds them out",
              file=sys.stderr)
    if args.json_out:
        _write_figures(args.json_out, result, tagger.manifest, args.catalogue, rows_read, bad_rows)
    if args.plots:
        from arttag.quality.eval_plots import write_plots

        for path in write_plots(collected, tagger.vocabulary, args.plots,
                                title=f"\n{tagger.model_version}, {args.split} split, {result['dev_artworks']} artworks"):
            print(path)
    return 0


def _learnt_from(tagger: Any) -> set[str]:
    """Ids of the artworks the bundle learnt from, as its neighbour scorers hold them (the
    training artworks, and any learnt online since); empty for a bundle without one."""
    from arttag.scorers.knn import KnnVoting

    return {artwork_id for scorer in tagger.ensemble.scorers if isinstance(scorer, KnnVoting)
            for artwork_id in scorer.ids}


def _write_figures(path: Path, result: dict[str, Any], manifest: dict[str, Any], catalogue: Path,
                   rows_read: int, bad_rows: int) -> None:
    from arttag.checksums import file_sha256
    from arttag.machine import cpu_model, memory_gib
    from arttag.model.bundle import library_versions

    out = {
        "headline": result["headline"],
        "model_version": manifest["model_version"],
        "encoder": manifest["encoder"]["name"],
        "catalogue": {"path": str(catalogue), "sha256": file_sha256(catalogue),
                      "rows_read": rows_read, "bad_rows": bad_rows},
        "command": "arttag " + " ".join(sys.argv[1:]) if sys.argv and "arttag" in sys.argv[0] else None,
        "machine": {"platform": platform.platform(), "processor": cpu_model(),
                    "cpus": os.cpu_count(), "memory_gib": memory_gib(), "libraries": library_versions()},
        "training": manifest.get("training"),
        "params": manifest.get("params"),
        **{k: v for k, v in result.items() if k != "headline"},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, default=float) + "\n")
    print(f"figures written to {path}")


_COLUMNS = ("p_at_1", "p_at_3", "p_at_5", "r_at_5", "f1_at_5", "ndcg_at_10", "rare_recall_at_10", "unseen_recall_at_10")


def _table(title: str, rows: dict[str, dict[str, Any]]) -> None:
    print(title)
    print(f"  {'':12s} " + " ".join(f"{c.replace('_at_', '@'):>13s}" for c in _COLUMNS))
    for name, m in rows.items():
        print(f"  {name:12s} " + " ".join(f"{m.get(c, 0.0):13.3f}" for c in _COLUMNS))


_VIEW_TITLES = {
    "isolated": "isolated (no training artwork of the same group title, nor by the same artist within "
                "10 accession numbers)",
    "isolated_new_artist": "isolated, by an artist with no work in training",
}


def _print_metrics(result: dict[str, Any]) -> None:
    _table(f"{result.get('split', 'dev')} split: {result['dev_artworks']} tagged artworks",
           {**result["scorers"], "ensemble": result["ensemble"]})
    _table(f"novel text (text appears nowhere in training): {result['novel_text_artworks']} artworks",
           {**result["novel_text"]["scorers"], "ensemble": result["novel_text"]["ensemble"]})
    for view, figures in (result.get("views") or {}).items():
        _table(f"{_VIEW_TITLES[view]}: {figures['artworks']} artworks "
               f"({figures['novel_text']['artworks']} with novel text)",
               {"ensemble": figures["ensemble"], "novel text": figures["novel_text"]["ensemble"]})
    for key, figures in (result.get("auto_apply") or {}).items():
        if figures["threshold"] is None:
            print(f"auto-apply at precision {key}: no threshold (no confidence reached it at training)")
        else:
            print(f"auto-apply at precision {key} (confidence >= {figures['threshold']:.3f}): "
                  f"{figures['suggestions']} suggestions, precision {figures['precision'] or 0.0:.3f}, "
                  f"{figures['recall']:.3f} of the true tags recovered")
    print(f"ensemble ECE (top 10, 10 bins): {result['ece']:.4f}; "
          f"candidate recall (gold tags among step-1 candidates): {result['candidate_recall']:.3f}")
