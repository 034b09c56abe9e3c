"""Cost breakdown per artwork of tagging held-out artworks, and the cost after the encoder of this
code against an earlier commit's, measured side by side in one run on the same bundle and artworks.

    python bench/cost.py --bundle BUNDLE --catalogue artworks.jsonl.gz [--artworks 512] [--batch 32]

1. The held-out artworks: the catalogue's tagged ``dev`` artworks (:func:`arttag.catalogue.split.split_of`),
   which neither the scorers nor the re-ranker saw; the first ``--artworks`` of them.
2. Stages, per batch of ``--batch`` with this code: tokenising and encoding (the bundle's ONNX
   encoder, no embedding cache), each scorer's scoring, candidate gathering (the union of the
   scorers' candidates), re-ranker features and prediction, each scorer's explanations, building
   the events and serialising them, and Kafka (produce + flush of each batch's records to a
   topic with a throw-away prefix on ``--kafka``).
3. Before and after: the code of ``--before`` (a commit; its ``shared/arttag`` is extracted with
   ``git archive`` and imported as ``arttag_before``) and this code load the same bundle and tag the
   same artworks from the same embeddings (an encoder that replays the ones computed in 2), batch
   by batch, alternating which goes first. Timed: ``tagger.suggest`` and building and serialising
   each artwork's event, in wall-clock time and in the process's CPU time (every thread's: on
   cores busy with other work, wall-clock time also counts the wait for a core, and an extra
   library thread that spins costs CPU time without shortening the wall clock). Their suggestions are compared (tags, order, cited evidence, figures)
   and scored against the artworks' own tags (F1@5, nDCG@10).

Writes ``bench/results/cost.json`` (``--out``) and prints the tables.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from machine_info import machine_details, portable_path

BEFORE = "7a2e14b7d939334b16a1357c12bb1df9f7e624ae"
"""The last commit before explanations were built a batch at a time (issue #18, part 3)."""

BEFORE_PACKAGE = "arttag_before"


# -- the code before -------------------------------------------------------------------------


def import_before(rev: str, into: Path) -> ModuleType:
    """``shared/arttag`` of commit ``rev`` as the package :data:`BEFORE_PACKAGE` (its own imports renamed)."""
    archive = subprocess.run(["git", "archive", rev, "shared/arttag"], cwd=REPO, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    package = into / BEFORE_PACKAGE
    (into / "shared" / "arttag").rename(package)
    # Module paths in code and in strings (the scorer registry) name the package: rename them.
    # Pickled objects in a bundle still name ``arttag`` and load as this code's classes.
    pattern = re.compile(r"\barttag(?=[.:])|(?<=^from )arttag\b|(?<=^import )arttag\b", re.MULTILINE)
    for path in package.rglob("*.py"):
        path.write_text(pattern.sub(BEFORE_PACKAGE, path.read_text(encoding="utf-8")), encoding="utf-8")
    sys.path.insert(0, str(into))
    return importlib.import_module(BEFORE_PACKAGE)


def shown_path(path: str | Path) -> str:
    """``path`` as the results file records it: :func:`portable_path`, or only its last parts
    when it lies outside the checkout, beside it and the home folder (no machine's layout)."""
    text = portable_path(path)
    return text if not text.startswith("/") else ".../" + "/".join(Path(text).parts[-3:])


class ReplayEncoder:
    """The bundle encoder's embeddings, computed once, handed out again by text: both versions'
    taggers see the same vectors and the before/after comparison times what follows the encoder."""

    def __init__(self, name: str, dim: int, vectors: dict[str, np.ndarray]) -> None:
        self.name, self.dim, self.vectors = name, dim, vectors

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.vectors[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)


# -- figures ---------------------------------------------------------------------------------


class Clock:
    """Seconds spent per stage, summed over batches: ``with clock("stage"): ...``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t0


def event_values(events_module: ModuleType, ids: Sequence[str], suggestions: Sequence[Any],
                 model_version: str) -> list[tuple[bytes, bytes, Any]]:
    """(key, value, headers) of each artwork's ``TagSuggestionsPublished`` record, as the worker builds it."""
    out = []
    for artwork_id, tags in zip(ids, suggestions):
        event = events_module.TagSuggestionsPublished(
            suggestion_id=f"{artwork_id}:1:bench:{model_version}", artwork_id=artwork_id, revision=1,
            content_hash="0" * 64, model_version=model_version, suggestions=tags)
        out.append((artwork_id.encode(), events_module.encode_event(event), event))
    return out


def citations(suggestion: dict) -> dict[str, list[tuple]]:
    """What each scorer cites for one suggestion: neighbours' ids, (field, word) pairs, tag texts."""
    out = {}
    for c in suggestion["explanation"]["contributions"]:
        out[c["scorer"]] = [(e["kind"], e.get("artwork_id") or e.get("term") or e.get("tag_text"), e.get("field"))
                            for e in c["evidence"]]
    return out


def citations_up_to_ties(suggestion: dict) -> dict[str, list[tuple]]:
    """:func:`citations` with each cited neighbour named by its title and similarity instead of
    its id, in sorted order: equally similar neighbours with the same title are interchangeable."""
    out = {}
    for c in suggestion["explanation"]["contributions"]:
        out[c["scorer"]] = sorted(
            (e["kind"], e["title"], e["similarity"]) if e["kind"] == "neighbour"
            else (e["kind"], e.get("term") or e.get("tag_text"), e.get("field") or "") for e in c["evidence"])
    return out


def max_figure_difference(a: Any, b: Any) -> float:
    """The largest difference between the numbers of two equally shaped JSON values (inf when the shapes differ)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return 0.0 if a == b else float("inf")
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(float(a) - float(b))
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        return max([max_figure_difference(a[k], b[k]) for k in a] or [0.0])
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return max([max_figure_difference(x, y) for x, y in zip(a, b)] or [0.0])
    if isinstance(a, str) and isinstance(b, str):
        return 0.0 if a == b or _same_but_figures(a, b) else float("inf")
    return 0.0 if a == b else float("inf")


def _same_but_figures(a: str, b: str) -> bool:
    """Summaries that differ only in a rounded figure's last digit."""
    number = re.compile(r"\d+(?:\.\d+)?")
    return number.sub("#", a) == number.sub("#", b)


def compare(before: list[list[dict]], after: list[list[dict]]) -> dict[str, Any]:
    """How far this code's suggestions are from the earlier code's, artwork by artwork."""
    identical = same_tags = pairs = same_cited = same_cited_ties = 0
    worst = 0.0
    for a, b in zip(before, after):
        # Fields added to the suggestion contract since (e.g. ``auto_apply``) are not differences.
        b = [{k: v for k, v in s.items() if k in a[0]} if a else s for s in b]
        identical += a == b
        same_tags += [s["tag_id"] for s in a] == [s["tag_id"] for s in b]
        by_tag = {s["tag_id"]: s for s in b}
        for s in a:
            if s["tag_id"] in by_tag:
                pairs += 1
                same_cited += citations(s) == citations(by_tag[s["tag_id"]])
                same_cited_ties += citations_up_to_ties(s) == citations_up_to_ties(by_tag[s["tag_id"]])
                worst = max(worst, max_figure_difference(s, by_tag[s["tag_id"]]))
    n = len(before)
    return {"artworks": n, "identical_suggestion_lists": identical / n if n else 0.0,
            "same_tags_same_order": same_tags / n if n else 0.0, "tags_in_both": pairs,
            "same_citations": same_cited / pairs if pairs else 0.0,
            "same_citations_up_to_tied_neighbours": same_cited_ties / pairs if pairs else 0.0,
            "largest_figure_difference": worst}


def quality(suggestions: list[list[dict]], gold: list[set[str]], ranking_metrics: Callable) -> dict[str, float]:
    m = ranking_metrics([[s["tag_id"] for s in tags] for tags in suggestions], gold)
    return {"f1_at_5": m["f1_at_5"], "ndcg_at_10": m["ndcg_at_10"], "p_at_1": m["p_at_1"], "documents": m["documents"]}


# -- stages of this code -----------------------------------------------------------------------


def stage_breakdown(tagger: Any, encoder: Any, metas: list, ids: list[str], batch_size: int, options: Any,
                    producer: Any, topic: str) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Seconds per stage over all artworks (this code), and the embeddings the encoder produced."""
    from arttag.events import encode_event
    from arttag.kafka.clients import flush_or_fail
    from arttag.model.ensemble import math_threads
    from arttag.model.explain import assemble, explain_picks, published
    from arttag.scorers.base import Batch, Pairs

    ens = tagger.ensemble
    clock = Clock()
    vectors: dict[str, np.ndarray] = {}
    from arttag import events

    for start in range(0, len(metas), batch_size):
        part, part_ids = metas[start:start + batch_size], ids[start:start + batch_size]
        with clock("text building"):
            batch = Batch.from_metadata(part)
        with clock("tokenising"):
            encoder.tokenize(batch.texts)
        with clock("tokenising + encoding"):
            batch.embeddings = np.asarray(encoder.encode(batch.texts), dtype=np.float32)
        vectors.update(zip(batch.texts, batch.embeddings))
        # the thread limit the tagger applies after the encoder (BundleTagger.rank and .suggest)
        limit = math_threads(ens.threads)
        limit.__enter__()
        cands = []
        for s in ens.scorers:
            with clock(f"scoring: {s.name}"):
                cands.append(s.score(batch))
        with clock("candidate gathering"):
            Pairs.union(cands, len(batch), len(ens.vocabulary))
        with clock("re-ranker features"):
            feats = ens.features(batch, cands)  # builds the union again: counted twice, a few microseconds
        with clock("re-ranker prediction"):
            ranked = feats.ranked(ens._merge(feats.matrix))
        with clock("choosing published tags"):
            picks = published(part, ranked, ens, options)
        for s, c in zip(ens.scorers, cands):
            with clock(f"explanations: {s.name}"):
                explain_picks(s, c, batch, ranked, picks)
        with clock("event building"):
            suggestions = assemble(ens, part, ranked, picks)
            built = [events.TagSuggestionsPublished(
                suggestion_id=f"{i}:1:bench:{tagger.model_version}", artwork_id=i, revision=1,
                content_hash="0" * 64, model_version=tagger.model_version, suggestions=tags)
                for i, tags in zip(part_ids, suggestions)]
        with clock("serialisation"):
            values = [encode_event(e) for e in built]
        limit.__exit__(None, None, None)
        with clock("Kafka produce + flush"):
            for artwork_id, value in zip(part_ids, values):
                producer.produce(topic, key=artwork_id.encode(), value=value)
            flush_or_fail(producer)
    seconds = clock.seconds
    seconds["encoding"] = seconds.pop("tokenising + encoding") - seconds["tokenising"]
    return seconds, vectors


def compare_sides(args: argparse.Namespace, metas: list, ids: list[str], gold: list[set[str]], options: Any,
                  sides: dict[str, tuple[Any, Any, ModuleType]]) -> tuple:
    """Every side over the same artworks in whole passes, ``--rounds`` times, the order of the
    sides turning each round: ms per artwork (the median round), quality and suggestions.

    Whole passes rather than batches in turn: a side whose BLAS runs two threads leaves its
    second thread spinning for a while after each product, which would take a core from
    whichever side runs next; between passes that happens once, not once a batch."""
    from arttag.quality.ranking import ranking_metrics

    for tagger_, opts, _ in sides.values():
        tagger_.suggest(metas[:2], opts)  # warm-up (and the int8 search copies are made)
    names = list(sides)
    rounds: dict[str, list[float]] = {k: [] for k in names}
    # CPU time of the whole process (every thread): what a side costs on a machine whose other
    # cores are busy, where wall-clock time also counts waiting for a core
    cpu_rounds: dict[str, list[float]] = {k: [] for k in names}
    dumps: dict[str, list[list[dict]]] = {k: [] for k in names}
    n = len(metas)
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        print(f"round {r + 1}/{args.rounds}: {', '.join(order)}", flush=True)
        for side in order:
            tagger_, opts, events_mod = sides[side]
            # what earlier passes left (the suggestions kept for comparison, the other side's
            # garbage) is kept out of this pass's garbage collections, for every side alike
            gc.collect()
            gc.freeze()
            wall = cpu = 0.0
            for start in range(0, n, args.batch):
                part, part_ids = metas[start:start + args.batch], ids[start:start + args.batch]
                t0, c0 = time.perf_counter(), time.process_time()
                suggestions = tagger_.suggest(part, opts)
                event_values(events_mod, part_ids, suggestions, tagger_.model_version)
                wall += time.perf_counter() - t0
                cpu += time.process_time() - c0
                if r == 0:
                    dumps[side] += [[s.model_dump(mode="json") for s in tags] for tags in suggestions]
            rounds[side].append(wall / n * 1000)
            cpu_rounds[side].append(cpu / n * 1000)
    ms = {k: float(np.median(v)) for k, v in rounds.items()}
    cpu_ms = {k: float(np.median(v)) for k, v in cpu_rounds.items()}
    q = {k: quality(dumps[k], gold, ranking_metrics) for k in names}
    return ms, cpu_ms, q, dumps, {"ms_per_artwork": rounds, "cpu_ms_per_artwork": cpu_rounds}


def exact_search(tagger: Any) -> Any:
    """``tagger`` with every scorer's search (``arttag.scorers.search``) exact."""
    for scorer in tagger.ensemble.scorers:
        if "search" in type(scorer.params).model_fields:
            scorer.params = scorer.params.model_copy(update={"search": "exact"})
            scorer._search = None
    return tagger


# -- main --------------------------------------------------------------------------------------


ENCODER_STAGES = ("text building", "tokenising", "encoding")
OUTSIDE = ("Kafka produce + flush",)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, required=True, help="bundle directory or pointer (full-catalogue bundle)")
    ap.add_argument("--catalogue", type=Path, required=True, help="the Tate file (artworks.jsonl.gz)")
    ap.add_argument("--artworks", type=int, default=512, help="held-out artworks measured")
    ap.add_argument("--batch", type=int, default=32, help="artworks per batch (the stream worker's default)")
    ap.add_argument("--before", default=BEFORE, help="commit whose code is the 'before'")
    ap.add_argument("--rounds", type=int, default=3, help="whole passes per side (the median is reported)")
    ap.add_argument("--kafka", default="127.0.0.1:9092")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "cost.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from arttag.catalogue.records import iter_catalogue
    from arttag.catalogue.split import SPLIT_RULE, split_of
    from arttag.kafka import make_producer
    from arttag.kafka.admin import admin_client, create_topics
    from arttag.kafka.topics import TAG_SUGGESTIONS, TopicSpec, topic_name
    from arttag.model.bundle import (
        open_tagger,
        read_manifest,
        resolve_bundle,
    )
    from arttag.model.tagger import SuggestOptions
    from arttag.settings import CliSettings, KafkaSettings

    started = datetime.now(UTC).isoformat()
    command = "python bench/cost.py " + " ".join(
        a if not a.startswith("/") else shown_path(a) for a in sys.argv[1:])
    bundle = resolve_bundle(args.bundle)
    manifest = read_manifest(bundle)
    records = [r for r in iter_catalogue(args.catalogue) if r.metadata.tags and split_of(r.artwork_id) == "dev"]
    records = records[:args.artworks]
    metas = [r.metadata for r in records]
    ids = [r.artwork_id for r in records]
    print(f"{len(records)} held-out artworks; bundle {manifest['model_version']}", flush=True)

    settings = CliSettings().encoder.model_copy(update={"cache_size": 0})
    tagger = open_tagger(bundle, settings, verify=False)
    encoder = getattr(tagger.encoder, "inner", tagger.encoder)
    options = SuggestOptions()
    vocab = tagger.vocabulary
    gold = [{t.id for t in m.tags if t.id in vocab} for m in metas]

    kafka = KafkaSettings(bootstrap_servers=args.kafka, topic_prefix=f"bench-cost-{uuid.uuid4().hex[:6]}.",
                          partitions=3)
    create_topics(kafka, (TopicSpec(TAG_SUGGESTIONS, "bench"),))
    topic = topic_name(TAG_SUGGESTIONS, kafka.topic_prefix)
    producer = make_producer(kafka)
    try:
        tagger.suggest(metas[:2], options)  # warm-up: first allocations, lazy imports
        print("stages (this code)...", flush=True)
        seconds, vectors = stage_breakdown(tagger, encoder, metas, ids, args.batch, options, producer, topic)
    finally:
        admin_client(kafka).delete_topics([topic])

    replay = ReplayEncoder(tagger.encoder.name, tagger.encoder.dim, vectors)
    del tagger, encoder
    gc.collect()
    after = open_tagger(bundle, encoder=replay, verify=False)
    tmp = Path(tempfile.mkdtemp(prefix="arttag-before-"))
    try:
        import_before(args.before, tmp)
        old_bundle = importlib.import_module(f"{BEFORE_PACKAGE}.model.bundle")
        old_tagger_mod = importlib.import_module(f"{BEFORE_PACKAGE}.model.tagger")
        old_events = importlib.import_module(f"{BEFORE_PACKAGE}.events")
        # The frozen "before" side keeps its own loader: it must be the earlier commit's tagger,
        # built by that commit's code (which may predate open_tagger), not this code's.
        before = old_bundle.load_tagger(bundle, replay, verify=False)
        import arttag.events as new_events

        sides = {"before": (before, old_tagger_mod.SuggestOptions(), old_events),
                 "after": (after, options, new_events),
                 "after_exact_search": (exact_search(open_tagger(bundle, encoder=replay, verify=False)), options,
                                         new_events)}
        ms, cpu_ms, q, dumps, rounds = compare_sides(args, metas, ids, gold, options, sides)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    equivalence = compare(dumps["before"], dumps["after"])
    equivalence_exact = compare(dumps["after_exact_search"], dumps["after"])
    equivalence_before_exact = compare(dumps["before"], dumps["after_exact_search"])
    n = len(metas)
    per_artwork = {k: v / n * 1000 for k, v in seconds.items()}
    post = sum(v for k, v in per_artwork.items() if k not in ENCODER_STAGES and k not in OUTSIDE)
    headline = {
        "artworks": n,
        "batch": args.batch,
        "post_encoder_ms_per_artwork": round(ms["after"], 3),
        "post_encoder_ms_per_artwork_before": round(ms["before"], 3),
        "post_encoder_speedup_vs_before": round(ms["before"] / ms["after"], 2),
        "post_encoder_cpu_ms_per_artwork": round(cpu_ms["after"], 3),
        "post_encoder_cpu_ms_per_artwork_before": round(cpu_ms["before"], 3),
        "post_encoder_cpu_speedup_vs_before": round(cpu_ms["before"] / cpu_ms["after"], 2),
        "encoder_ms_per_artwork": round(per_artwork["tokenising"] + per_artwork["encoding"], 3),
        "kafka_ms_per_artwork": round(per_artwork["Kafka produce + flush"], 3),
        "f1_at_5": round(q["after"]["f1_at_5"], 4),
        "f1_at_5_before": round(q["before"]["f1_at_5"], 4),
        "ndcg_at_10": round(q["after"]["ndcg_at_10"], 4),
        "ndcg_at_10_before": round(q["before"]["ndcg_at_10"], 4),
        "same_citations": round(equivalence["same_citations"], 4),
        "same_citations_up_to_tied_neighbours": round(equivalence["same_citations_up_to_tied_neighbours"], 4),
        "same_citations_as_exact_search": round(equivalence_exact["same_citations"], 4),
    }
    result = {
        "command": command,
        "started_at": started,
        "machine": machine_details(),
        "bundle": {
            "model_version": manifest["model_version"],
            "encoder": manifest["encoder"]["name"],
            # what the scorers were fitted on (train + rerank); the re-ranker learned from rerank alone
            "training_artworks": sum(manifest["training"]["artworks"][s]
                                     for s in manifest["training"].get("scorers_fitted_on", ["train"])),
            "artworks_by_split": manifest["training"]["artworks"],
            "rerank_artworks": manifest["training"]["artworks"].get("rerank"),
            "scorers": [s.name for s in after.ensemble.scorers],
        },
        "artworks": {"split": "dev", "rule": SPLIT_RULE, "count": n, "catalogue": shown_path(args.catalogue)},
        "before": {"commit": args.before},
        "headline": headline,
        "stages_ms_per_artwork": {k: round(v, 4) for k, v in per_artwork.items()},
        "stages_post_encoder_ms_per_artwork": round(post, 3),
        "before_after": {"ms_per_artwork": {k: round(v, 3) for k, v in ms.items()},
                         "cpu_ms_per_artwork": {k: round(v, 3) for k, v in cpu_ms.items()},
                         "rounds": {m: {k: [round(x, 3) for x in v] for k, v in by.items()} for m, by in rounds.items()},
                         "quality": q, "equivalence": equivalence,
                         "equivalence_int8_vs_exact_search": equivalence_exact,
                         "equivalence_before_vs_exact_search": equivalence_before_exact},
        "note": "stages: this code, one pass; before/after: tagger.suggest plus building and serialising "
                "each artwork's event, from the same embeddings, in whole passes over the artworks, "
                f"{args.rounds} rounds, the order of the sides turning each round; the median round. "
                "after_exact_search: this code with every scorer's search exact (arttag.scorers.search). "
                "Citations 'up to tied neighbours' compare a cited neighbour by its title and similarity: "
                "identical texts have identical embeddings, and among equally similar neighbours this code "
                "cites the first in training order where the code before took whichever its partial sort left",
    }
    result["machine"]["load_average_at_end"] = list(os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(render_table(result))
    return 0


def render_table(result: dict) -> str:
    lines = [f"{'stage':40s} {'ms/artwork':>11s}"]
    for k, v in result["stages_ms_per_artwork"].items():
        lines.append(f"{k:40s} {v:11.3f}")
    lines.append(f"{'after the encoder, before Kafka':40s} {result['stages_post_encoder_ms_per_artwork']:11.3f}")
    lines.append(json.dumps(result["headline"], indent=1))
    lines.append(json.dumps(result["before_after"]["equivalence"], indent=1))
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
