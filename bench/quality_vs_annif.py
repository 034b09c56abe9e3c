"""Side-by-side quality benchmark: arttag against the best Annif configuration, on the same held-out artworks, scored by the same code.

What it does, in order (each step prints what it is doing; long ones print progress):

1. makes sure Annif (PyPI ``annif`` with the ``omikuji``, ``fasttext`` and ``nn`` extras) is installed in its own virtual environment under the cache
   folder (``<cache>/annif-venv``), creating it if missing;
2. reads the catalogue and splits it with :func:`arttag.catalogue.split.split_of` (random view:
   evaluated on the tagged ``dev`` artworks; ``--view new-acquisitions``: the same split of the
   artworks acquired before 2000, evaluated on those acquired from 2000 on);
3. writes Annif's subject vocabulary (TSV ``<uri>\\tlabel``, ``annif load-vocab``), its short-text
   corpora (TSV ``text\\t<uri> <uri>...``: ``base`` = the train split, ``ens`` = rerank buckets 10-19,
   ``tune`` = rerank buckets 20-24, ``full`` = train + rerank) and the evaluated documents, all with
   the text of :func:`arttag.catalogue.text.build_text` (the text arttag's models see);
4. trains the base projects ``tfidf``, ``omikuji`` (Parabel settings), ``fasttext``, ``mllm`` (and
   ``svc`` when asked for) on ``base``; the ``pav`` and ``nn`` ensembles on ``ens`` (suggestions of sources that
   never saw those documents); ``annif hyperopt`` sets the weights of ``ensemble-tuned`` on
   ``tune``; ``ensemble`` (equal weights) needs nothing;
5. per project, the limit and threshold of ``annif optimize``'s grid with the best F1 (doc avg)
   on ``tune`` (computed on ``annif index`` output, checked against ``annif optimize`` itself on
   a sample); with ``--refit`` the base projects then learn again from ``full``;
6. runs ``annif index`` over the evaluated documents for each project and reads the JSONL back as
   ranked tag lists (each project also as ``<project>+optimized``, its optimised limit and
   threshold applied), timed (a one-document run gives the start-up and model-loading cost);
7. ranks the evaluated artworks with the arttag bundle (``--bundle``), timed;
8. scores every system with :mod:`arttag.quality.ranking` (P@1, P@3, P@5, R@5, F1@5, nDCG@10,
   recall@10 on rare and on never-trained tags) on the whole view and its parts (novel text,
   isolated, isolated with a new artist), takes per part and metric the best Annif configuration
   as the anchor, prints the leads and writes ``bench/results/quality_vs_annif.json``
   (``--merge-into`` adds a new-acquisitions run to a random-view file).

Run (an hour or more per view on 2 busy cores, most of it Annif; heavy, so niced)::

    nice -n 10 .venv/bin/python bench/quality_vs_annif.py --bundle BUNDLE --embedding-cache ~/.cache/arttag/embeddings

For a quick look on a subset: ``--train-limit 3000 --dev-limit 300 --out /tmp/q.json``.
Trained Annif models are kept under ``<cache>/annif-bench/`` and reused while the training data
and settings are unchanged (``--retrain`` forces training; the JSON says which happened).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from arttag.catalogue.records import CatalogueRecord, load_catalogue
from arttag.catalogue.split import SPLIT_RULE, bucket, split_of
from arttag.catalogue.text import build_text
from arttag.catalogue.vocabulary import Vocabulary
from arttag.checksums import file_sha256
from arttag.model.training import (
    RARE_MAX_USES,
    build_vocabulary,
    held_out_gold,
    rare_and_unseen,
)
from arttag.quality.ranking import ranking_metrics, subset_recall
from arttag.quality.views import NEW_ACQUISITIONS_FROM, split_by_acquisition, view_masks
from machine_info import machine_details, portable_path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CATALOGUE = REPO.parent / "shared" / "data" / "tate" / "artworks.jsonl.gz"
DEFAULT_OUT = REPO / "bench" / "results" / "quality_vs_annif.json"
ANNIF_SPEC = "annif[omikuji,fasttext,nn]"
URI_PREFIX = "http://arttag.invalid/tate/tag/"
"""Annif wants a URI per subject; ``.invalid`` is a reserved top-level domain, so these never resolve."""
VOCAB_ID = "tate"

# The Annif projects. Base projects learn from documents; ensembles combine base projects' suggestions.
BASE_SYSTEMS = ("tfidf", "omikuji", "fasttext", "mllm", "svc")
ENSEMBLE_SYSTEMS = ("ensemble", "ensemble-tuned", "pav", "nn")
ANNIF_SYSTEMS = (*BASE_SYSTEMS, *ENSEMBLE_SYSTEMS)
TRAINED_ENSEMBLES = ("pav", "nn")
"""Ensembles that learn (PAV: per-subject isotonic regression; NN: a small network) on held-out documents."""
# SVC is no source: Annif's SVC learns one subject per document (a 0.17 F1@5 source on a 3,000-artwork
# sample, against omikuji's 0.35), and on the full train split (3,815 first-subject classes, word
# bigrams) its one-vs-rest LinearSVC had not finished after 22 minutes on 2 busy cores.
ENSEMBLE_SOURCES: dict[str, tuple[str, ...]] = {
    # The plain ensemble as in earlier runs of this benchmark (equal weights).
    "ensemble": ("omikuji", "fasttext", "mllm"),
    # Weights chosen by `annif hyperopt` on the tuning documents.
    "ensemble-tuned": ("omikuji", "fasttext", "mllm"),
    "pav": ("omikuji", "fasttext", "mllm"),
    "nn": ("omikuji", "fasttext", "mllm"),
}
DEFAULT_SYSTEMS = ("tfidf", "omikuji", "fasttext", "mllm", *("ensemble", "ensemble-tuned", "pav", "nn"))
"""What a run builds unless ``--systems`` says otherwise: every configuration but ``svc`` (see above)."""
ENSEMBLE_HOLDOUT_BUCKETS = range(10, 20)
"""``rerank`` buckets (:func:`arttag.catalogue.split.bucket`) the PAV and NN ensembles learn on."""
TUNING_BUCKETS = range(20, 25)
"""``rerank`` buckets ``annif optimize`` and ``annif hyperopt`` run on (never the dev artworks)."""
HYPEROPT_TRIALS = 30
HYPEROPT_DOCS = 500
"""``annif hyperopt`` re-scores every tuning document in each trial in Python (about 10 s per trial
for 500 documents on 2 busy cores): 30 trials on 500 documents keep it to minutes."""
OPTIMIZE_LIMITS = range(1, 16)
OPTIMIZE_THRESHOLDS = tuple(i * 0.05 for i in range(20))
OPTIMIZE_CHECK_DOCS = 150
"""``annif optimize``'s grid (``FILTER_BATCH_MAX_LIMIT`` 15, thresholds 0-0.95 by 0.05)."""
_COMMON = {"language": "en", "vocab": VOCAB_ID, "analyzer": "snowball(english)", "limit": "100"}
PROJECT_SETTINGS: dict[str, dict[str, str]] = {
    "tfidf": {"backend": "tfidf"},
    # Parabel: balanced 2-means tree, deep, no layer collapsing (also omikuji's defaults in Annif).
    "omikuji": {"backend": "omikuji", "cluster_balanced": "True", "cluster_k": "2", "max_depth": "20",
                "collapse_every_n_layers": "0"},
    # Short texts: a whole record in one chunk (chunksize 24 sentences), sub-word n-grams 3-5 for
    # rare words and spelling variants; hierarchical softmax keeps 15k labels cheap. 200k n-gram
    # buckets instead of 2M: the short texts have few distinct n-grams, and 2M x 500 floats is a 4 GB model.
    "fasttext": {"backend": "fasttext", "dim": "500", "lr": "0.25", "epoch": "30", "loss": "hs",
                 "chunksize": "24", "minn": "3", "maxn": "5", "bucket": "200000", "minCount": "1", "wordNgrams": "1"},
    "mllm": {"backend": "mllm"},
    # Annif's SVC is multi-class: it learns from one subject per document (the first), so it is a
    # weak source alone on multi-label records. Word uni- and bigrams seen at least twice: the
    # bigrams carry phrases ("still life"), min_df 2 drops the one-off tokens of catalogue numbers.
    "svc": {"backend": "svc", "ngram": "2", "min_df": "2"},
    "ensemble": {"backend": "ensemble"},
    "ensemble-tuned": {"backend": "ensemble"},
    # min-docs 10 (Annif's default): a subject needs ten held-out documents for its own regression.
    "pav": {"backend": "pav", "min-docs": "10"},
    # Annif's defaults (100 hidden nodes, dropout 0.2, 10 epochs, adam).
    "nn": {"backend": "nn_ensemble", "nodes": "100", "dropout_rate": "0.2", "epochs": "10", "optimizer": "adam"},
}
METRICS = ("p_at_1", "p_at_3", "p_at_5", "r_at_5", "f1_at_5", "ndcg_at_10", "rare_recall_at_10",
           "unseen_recall_at_10")


def shown_path(path: object) -> str:
    """:func:`portable_path`, without the run of slashes it leaves for a path right under the root
    (``/srv/models`` -> ``.../srv/models``)."""
    text = portable_path(path)
    return ".../" + text[4:].lstrip("/") if text.startswith(".../") else text


def say(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


class Heartbeat:
    """Prints '<what>: N s' every ``every`` seconds while a step runs, with the last line of a log file."""

    def __init__(self, what: str, every: float = 30.0, tail: Path | None = None) -> None:
        self.what, self.every, self.tail = what, every, tail
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = time.perf_counter()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            last = ""
            if self.tail is not None and self.tail.exists():
                lines = [x.strip() for x in _tail(self.tail, 4000).replace("\r", "\n").splitlines() if x.strip()]
                last = f" | {lines[-1][:110]}" if lines else ""
            say(f"  {self.what}: {time.perf_counter() - self._t0:.0f} s{last}")

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()


# -- Annif's environment ----------------------------------------------------------------


class Annif:
    """The ``annif`` command of a virtual environment, run with this benchmark's projects and data."""

    def __init__(self, venv: Path, work: Path) -> None:
        self.venv = venv
        self.work = work
        self.env = {
            **os.environ,
            "ANNIF_PROJECTS": str(work / "projects.cfg"),
            "ANNIF_DATADIR": str(work / "data"),
            "NLTK_DATA": str(work / "nltk_data"),
        }

    @property
    def exe(self) -> Path:
        return self.venv / "bin" / "annif"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def version(self) -> str:
        return subprocess.run([str(self.exe), "--version"], capture_output=True, text=True, check=True,
                              env=self.env).stdout.strip()

    def run(self, *args: str, log: Path | None = None, heartbeat: str | None = None) -> float:
        """Run ``annif ARGS`` in the work folder; returns its wall time in seconds.

        With ``log``, its output goes to that file (omikuji and fastText draw progress bars) and
        the heartbeat shows the file's latest line; without, output is dropped unless it fails.
        """
        cmd = [str(self.exe), *args]
        say("  $ " + " ".join(shlex.quote(a) for a in ["annif", *args]) + (f"  (log: {log})" if log else ""))
        t0 = time.perf_counter()
        target = Path(log) if log else self.work / "last-command.log"
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "w", encoding="utf-8") as out:
            proc = subprocess.Popen(cmd, cwd=self.work, env=self.env, stdout=out, stderr=subprocess.STDOUT)
            with Heartbeat(heartbeat or f"annif {args[0]}", tail=target if log else None):
                proc.wait()
        if proc.returncode != 0:
            raise SystemExit(f"annif {args[0]} failed with exit code {proc.returncode}:\n{_tail(target, 3000)}")
        return time.perf_counter() - t0


def _tail(path: Path, chars: int) -> str:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - chars))
        return fh.read().decode("utf-8", "replace")


def ensure_annif(cache: Path, spec: str) -> Path:
    """``<cache>/annif-venv`` with Annif installed; created with venv + pip when missing."""
    venv = cache / "annif-venv"
    exe = venv / "bin" / "annif"
    if exe.exists():
        say(f"Annif found in {venv}")
        return venv
    say(f"creating {venv} and installing {spec} (a few minutes)")
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--upgrade", "pip"], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", spec], check=True)
    if not exe.exists():
        raise SystemExit(f"pip installed {spec} but {exe} is missing")
    return venv


def ensure_punkt(annif: Annif, train_texts: Sequence[str]) -> str:
    """NLTK's ``punkt_tab`` sentence model, which Annif's analyzers need.

    Downloaded from NLTK's data server when it can be reached; where it cannot (no network but
    the package registries), Punkt parameters are learnt from the training texts themselves
    (Punkt is unsupervised) and saved in the same layout. Returns how it was obtained.
    """
    target = annif.work / "nltk_data"
    lang_dir = target / "tokenizers" / "punkt_tab" / "english"
    marker = target / "punkt_source.txt"
    if lang_dir.is_dir() and marker.exists():
        return marker.read_text().strip()
    target.mkdir(parents=True, exist_ok=True)
    say("fetching NLTK punkt_tab")
    probe = subprocess.run(
        [str(annif.python), "-c",
         "import sys, nltk; sys.exit(0 if nltk.download('punkt_tab', download_dir=sys.argv[1], quiet=True) else 1)",
         str(target)], capture_output=True, text=True, timeout=120)
    if probe.returncode == 0 and lang_dir.is_dir():
        source = "downloaded from NLTK's data server"
    else:
        say("  NLTK's data server is unreachable: learning Punkt parameters from the training texts")
        sample = target / "punkt_train.txt"
        sample.write_text("\n".join(train_texts) + "\n", encoding="utf-8")
        lang_dir.parent.mkdir(parents=True, exist_ok=True)
        code = (
            "import sys\n"
            "from nltk.tokenize.punkt import PunktTrainer, save_punkt_params\n"
            "trainer = PunktTrainer()\n"
            "trainer.train(open(sys.argv[1], encoding='utf-8').read(), finalize=True)\n"
            "save_punkt_params(trainer.get_params(), dir=sys.argv[2])\n"
        )
        subprocess.run([str(annif.python), "-c", code, str(sample), str(lang_dir)], check=True)
        sample.unlink()
        source = f"learnt locally with nltk PunktTrainer from {len(train_texts)} training texts (NLTK's data server unreachable)"
    marker.write_text(source + "\n")
    return source


# -- data -------------------------------------------------------------------------------


def tag_uri(tag_id: str) -> str:
    return URI_PREFIX + tag_id


def annif_label(label: str) -> str:
    # Tate's "x - non-specific" would never occur in a text; MLLM matches labels, so give it "x"
    # (arttag's own tag text, Tag.text, drops the suffix the same way).
    return label.replace(" - non-specific", "").replace("\t", " ").strip() or label


def write_inputs(work: Path, vocab: Vocabulary, corpora: dict[str, Sequence[CatalogueRecord]],
                 dev: Sequence[CatalogueRecord]) -> dict[str, str]:
    """vocab.tsv, one subject-indexed corpus per ``corpora`` entry (``<name>.tsv``), dev.tsv; returns each
    file's sha256."""
    work.mkdir(parents=True, exist_ok=True)
    with open(work / "vocab.tsv", "w", encoding="utf-8") as fh:
        for t in vocab:
            fh.write(f"<{tag_uri(t.id)}>\t{annif_label(t.label)}\n")
    for name, records in corpora.items():
        write_corpus(work / f"{name}.tsv", records, vocab)
    with open(work / "dev.tsv", "w", encoding="utf-8") as fh:
        for r in dev:
            fh.write(_one_line(build_text(r.metadata)) + "\n")
    write_corpus(work / "dev-gold.tsv", dev, vocab, keep_untagged=True)  # for the `annif eval` cross-check
    if "tune" in corpora:  # the tuning documents' texts alone, in the same order, for `annif index`
        with open(work / "tune-text.tsv", "w", encoding="utf-8") as fh:
            for r in corpora["tune"]:
                fh.write(_one_line(build_text(r.metadata)) + "\n")
    with open(work / "one.tsv", "w", encoding="utf-8") as fh:
        fh.write(_one_line(build_text(dev[0].metadata)) + "\n")
    return {name: file_sha256(work / name) for name in ("vocab.tsv", *(f"{n}.tsv" for n in corpora), "dev.tsv")}


def write_corpus(path: Path, records: Sequence[CatalogueRecord], vocab: Vocabulary, keep_untagged: bool = False) -> None:
    """Annif's short-text corpus: ``text\\t<uri> <uri>...`` per artwork with a tag in ``vocab``."""
    with open(path, "w", encoding="utf-8") as fh:
        for r in records:
            uris = " ".join(f"<{tag_uri(i)}>" for i in sorted({t.id for t in r.metadata.tags}) if i in vocab)
            if uris or keep_untagged:
                fh.write(f"{_one_line(build_text(r.metadata))}\t{uris}\n")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def projects_cfg(systems: Sequence[str], weights: dict[str, dict[str, float]] | None = None) -> str:
    """Annif's ``projects.cfg`` for ``systems`` (``tate-<system>``); ensembles get their
    :data:`ENSEMBLE_SOURCES`, with ``weights[ensemble][source]`` where given (default 1)."""
    out = []
    for s in systems:
        settings = {"name": f"Tate {s}", **_COMMON, **PROJECT_SETTINGS[s]}
        if s in ENSEMBLE_SYSTEMS:
            settings.pop("analyzer")  # ensembles read their sources' suggestions, not text
            w = (weights or {}).get(s, {})
            settings["sources"] = ",".join(f"tate-{src}:{_weight(w.get(src, 1))}" for src in ENSEMBLE_SOURCES[s])
        out.append(f"[tate-{s}]\n" + "".join(f"{k}={v}\n" for k, v in settings.items()))
    return "\n".join(out)


def _weight(w: float) -> str:
    return "1" if w == 1 else f"{w:.4f}"


def with_sources(systems: Sequence[str]) -> list[str]:
    """``systems`` in training order, with every ensemble's sources added before it."""
    unknown = set(systems) - set(ANNIF_SYSTEMS)
    if unknown:
        raise ValueError(f"unknown Annif systems {sorted(unknown)}; known: {', '.join(ANNIF_SYSTEMS)}")
    wanted = set(systems)
    for s in systems:
        wanted.update(ENSEMBLE_SOURCES.get(s, ()))
    return [s for s in ANNIF_SYSTEMS if s in wanted]


def parse_optimize(output: str) -> dict[str, dict[str, float]]:
    """``annif optimize``'s closing lines (``Best F1 score (doc avg): 0.4321\tLimit: 5\tThreshold: 0.10``)
    -> ``{"F1 score (doc avg)": {"score": 0.4321, "limit": 5, "threshold": 0.1}, ...}``."""
    found: dict[str, dict[str, float]] = {}
    for line in output.splitlines():
        if not line.startswith("Best "):
            continue
        head, _, rest = line[5:].partition(":")
        fields = [f.strip() for f in rest.split("\t")]
        if len(fields) != 3:
            continue
        entry: dict[str, float] = {"score": float(fields[0])}
        for f in fields[1:]:
            key, _, value = f.partition(":")
            entry[key.strip().lower()] = float(value)
        entry["limit"] = int(entry["limit"])
        found[head.strip()] = entry
    if "F1 score (doc avg)" not in found:
        raise ValueError(f"no 'Best F1 score (doc avg)' line in annif optimize's output:\n{output[-2000:]}")
    return found


def parse_hyperopt_sources(output: str) -> dict[str, float]:
    """The ``sources=tate-a:0.4,tate-b:0.6`` line ``annif hyperopt`` recommends -> ``{"a": 0.4, "b": 0.6}``."""
    for line in output.splitlines():
        if line.startswith("sources="):
            weights = {}
            for part in line.removeprefix("sources=").split(","):
                pid, _, w = part.rpartition(":")
                weights[pid.removeprefix("tate-")] = float(w)
            return weights
    raise ValueError(f"no 'sources=' line in annif hyperopt's output:\n{output[-2000:]}")


def filter_suggestions(scored: Sequence[Sequence[tuple[int, float]]], limit: int,
                       threshold: float) -> list[list[int]]:
    """What ``annif index --limit L --threshold T`` keeps of a ranked, scored list: the top ``limit``
    whose score is at least ``threshold`` (Annif's ``filter_suggestion`` rule)."""
    return [[i for i, sc in r[:limit] if sc >= threshold] for r in scored]


def optimize_grid(scored: Sequence[Sequence[tuple[int, float]]], gold: Sequence[set[int]],
                  limits: Sequence[int] = OPTIMIZE_LIMITS,
                  thresholds: Sequence[float] = OPTIMIZE_THRESHOLDS) -> dict[str, dict[str, float]]:
    """``annif optimize`` on suggestions already made: for every (limit, threshold) of its grid, the
    document-averaged precision, recall and F1 (sklearn's ``average="samples"``: a document with no
    suggestion scores 0; a zero score is no suggestion), and per measure the best combination, the
    later one winning ties as in Annif. Returns what :func:`parse_optimize` returns."""
    best: dict[str, dict[str, float]] = {}
    n = len(scored)
    for limit in limits:
        for threshold in thresholds:
            p_sum = r_sum = f_sum = 0.0
            for ranked, g in zip(scored, gold):
                kept = [i for i, sc in ranked[:limit] if sc >= threshold and sc > 0]
                hits = sum(1 for i in kept if i in g)
                if kept:
                    p_sum += hits / len(kept)
                if g:
                    r_sum += hits / len(g)
                if kept or g:
                    f_sum += 2 * hits / (len(kept) + len(g))
            for name, total in (("Precision (doc avg)", p_sum), ("Recall (doc avg)", r_sum), ("F1 score (doc avg)", f_sum)):
                value = total / n if n else 0.0
                if name not in best or value >= best[name]["score"]:
                    best[name] = {"score": value, "limit": limit, "threshold": round(threshold, 2)}
    return best


def best_per_metric(systems: dict[str, dict[str, Any]], metrics: Sequence[str] = ("f1_at_5", "ndcg_at_10"),
                    prefix: str = "annif-") -> dict[str, str | None]:
    """The best system (by name, ``prefix`` removed) of those named ``prefix...`` for each metric; ties go
    to the earlier name. None when there is none."""
    names = [n for n in systems if n.startswith(prefix)]
    out: dict[str, str | None] = {}
    for m in metrics:
        best = None
        for n in names:
            if best is None or systems[n][m] > systems[best][m]:
                best = n
        out[m] = best.removeprefix(prefix) if best else None
    return out


def read_index_output(path: Path, vocab: Vocabulary, n_docs: int) -> list[list[tuple[int, float]]]:
    """``annif index`` JSONL (one line per document, in input order) -> ranked (vocabulary index, score) lists."""
    rankings = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            results = json.loads(line)["results"]
            ranked = []
            for r in sorted(results, key=lambda r: -r["score"]):
                tag_id = r["uri"].removeprefix(URI_PREFIX)
                if tag_id in vocab:
                    ranked.append((vocab.index(tag_id), float(r["score"])))
            rankings.append(ranked)
    if len(rankings) != n_docs:
        raise SystemExit(f"{path}: {len(rankings)} result lines for {n_docs} documents")
    return rankings


def ranks_only(scored: Sequence[Sequence[tuple[int, float]]]) -> list[list[int]]:
    return [[i for i, _ in r] for r in scored]


# -- scoring ------------------------------------------------------------------------------


def score(rankings: Sequence[Sequence[int]], gold: Sequence[set[int]], rare: set[int],
          unseen: set[int]) -> dict[str, Any]:
    m: dict[str, Any] = ranking_metrics(rankings, gold)
    r = subset_recall(rankings, gold, rare, 10)
    u = subset_recall(rankings, gold, unseen, 10)
    m["rare_recall_at_10"], m["rare_pairs"] = r["recall"], r["pairs"]
    m["unseen_recall_at_10"], m["unseen_pairs"] = u["recall"], u["pairs"]
    return m


# -- arttag -------------------------------------------------------------------------------


def load_arttag(bundle: Path) -> Any:
    """The bundle's tagger with the encoder it was trained with (the ONNX one unless it was the hashing fake)."""
    from arttag.model.bundle import open_tagger
    from arttag.settings import CliSettings

    return open_tagger(bundle, CliSettings().encoder)


def run_arttag(bundle: Path, dev: Sequence[CatalogueRecord], batch_size: int, vocab: Vocabulary,
               embedding_cache: Path | None = None, throughput_sample: int | None = None) -> dict[str, Any]:
    """Rank the dev artworks with the bundle; rankings in ``vocab``'s indices, and the timings.

    By default every dev text is encoded afresh and that pass gives the throughput. With
    ``embedding_cache`` the quality pass takes embeddings from that ``.npz`` cache (as
    ``arttag evaluate --embedding-cache`` does) and the throughput comes from a separate, fresh
    pass over the first ``throughput_sample`` dev artworks.
    """
    from arttag.model.training import embed_texts, make_batch
    from tqdm import tqdm

    t0 = time.perf_counter()
    tagger = load_arttag(bundle)
    load_s = time.perf_counter() - t0
    say(f"arttag bundle {tagger.model_version} loaded in {load_s:.1f} s "
        f"(encoder {tagger.manifest['encoder']['name']})")
    # Bundle columns -> the catalogue vocabulary's indices (identical when the bundle was trained on this catalogue).
    own = tagger.vocabulary
    to_cat = np.array([vocab.index(t.id) if t.id in vocab else -1 for t in own], dtype=np.int64)

    def mapped(tags: np.ndarray) -> list[int]:
        return [int(i) for i in to_cat[tags] if i >= 0][:10]

    names = [s.name for s in tagger.ensemble.scorers]
    rankings: dict[str, list[list[int]]] = {n: [] for n in ["ensemble", *names]}
    embeddings = None
    if embedding_cache is not None and tagger.ensemble.needs_embeddings:
        # The bare encoder, so the tagger's own in-memory cache stays cold for the throughput pass.
        bare = getattr(tagger.encoder, "inner", tagger.encoder)
        say(f"arttag: dev embeddings through the cache in {embedding_cache}")
        embeddings = embed_texts(bare, [build_text(r.metadata) for r in dev], embedding_cache, progress=True)
    t0 = time.perf_counter()
    for start in tqdm(range(0, len(dev), batch_size), desc="arttag ranking dev" + (
            "" if embeddings is not None else " (encode + score + re-rank)"), unit="batch", file=sys.stdout):
        part = dev[start:start + batch_size]
        if embeddings is not None:
            ranked, cands = tagger.ensemble.rank(make_batch(part, embeddings[start:start + batch_size]))
        else:
            _, cands, ranked = tagger.rank([r.metadata for r in part])
        rankings["ensemble"] += [mapped(r.tags[:20]) for r in ranked]
        for name, c in zip(names, cands):
            rankings[name] += [mapped(t[:20]) for t in c.tags]
    rank_s = time.perf_counter() - t0
    timed_docs = len(dev)
    if embeddings is not None:
        sample = dev[: throughput_sample or len(dev)]
        t0 = time.perf_counter()
        for start in tqdm(range(0, len(sample), batch_size), desc="arttag throughput (encode + score + re-rank)",
                          unit="batch", file=sys.stdout):
            tagger.rank([r.metadata for r in sample[start:start + batch_size]])
        rank_s, timed_docs = time.perf_counter() - t0, len(sample)
    same = [t.id for t in own] == [t.id for t in vocab]
    return {"tagger": tagger, "rankings": rankings, "load_s": load_s, "rank_s": rank_s, "timed_docs": timed_docs,
            "same_vocabulary": same, "embeddings_from_cache": embeddings is not None}


class AnnifRun:
    """Annif's side of one run: vocabulary, training (reused when data and settings match), the
    ensembles' weights, tuning, refit, indexing the evaluated artworks and Annif's own cross-checks.
    :attr:`results` holds what each configuration did, as the result file stores it."""

    def __init__(self, annif: Annif, systems: Sequence[str], hashes: dict[str, str], version: str, punkt: str,
                 jobs: int, retrain: bool) -> None:
        self.annif, self.systems, self.hashes, self.version, self.punkt = annif, list(systems), hashes, version, punkt
        self.jobs, self.retrain = jobs, retrain
        self.record_path = annif.work / "train-record.json"
        self.train_record: dict[str, Any] = json.loads(self.record_path.read_text()) if self.record_path.exists() else {}
        self.results: dict[str, dict[str, Any]] = {s: {"project": f"tate-{s}"} for s in systems}
        self.keys: dict[str, str] = {}
        self.weights: dict[str, dict[str, float]] = {}
        self.bases = [s for s in systems if s in BASE_SYSTEMS]
        self.ensembles = [s for s in systems if s in ENSEMBLE_SYSTEMS]
        self.write_cfg()  # what every annif command of the run reads; the ensembles' weights join it later

    def write_cfg(self) -> str:
        text = projects_cfg(self.systems, self.weights)
        (self.annif.work / "projects.cfg").write_text(text)
        return text

    def train_project(self, s: str, corpus: str, stage: str) -> None:
        """``annif train tate-<s> <corpus>.tsv`` unless the same model (data, settings, sources) is on disk."""
        parts = [self.hashes["vocab.tsv"], self.hashes[f"{corpus}.tsv"], PROJECT_SETTINGS[s], _COMMON, self.version,
                 self.punkt, [self.keys.get(src) for src in ENSEMBLE_SOURCES.get(s, ())]]
        key = self.keys[s] = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
        res = self.results[s]
        previous = self.train_record.get(s)
        model_dir = self.annif.work / "data" / "projects" / f"tate-{s}"
        if previous and previous["key"] == key and model_dir.is_dir() and not self.retrain:
            say(f"Annif {s} ({stage}): reusing the model trained on the same data at {previous['trained_at']}")
            took, now = previous["train_s"], False
        else:
            with open(self.annif.work / f"{corpus}.tsv", encoding="utf-8") as fh:
                n = sum(1 for _ in fh)
            say(f"Annif {s} ({stage}): training on {n} documents of {corpus}.tsv (--jobs {self.jobs})")
            took = self.annif.run("train", "--jobs", str(self.jobs), "-v", "INFO", f"tate-{s}", f"{corpus}.tsv",
                                  heartbeat=f"training {s} ({stage})",
                                  log=self.annif.work / "logs" / f"train-{s}-{stage}.log")
            now = True
            self.train_record[s] = {"key": key, "train_s": took,
                                    "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            self.record_path.write_text(json.dumps(self.train_record, indent=2) + "\n")
        res.setdefault("training", {})[stage] = {"corpus": f"{corpus}.tsv", "train_s": took, "trained_now": now}
        res["train_s"] = sum(v["train_s"] for v in res["training"].values())
        say(f"Annif {s} ({stage}): trained in {took:.0f} s")

    def train(self, tune_docs: Sequence[CatalogueRecord], timings: dict[str, float]) -> None:
        """The vocabulary, the base projects on ``base``, then the ensembles (the learning ones on
        ``ens``; ``ensemble-tuned``'s source weights by ``annif hyperopt`` on the tuning documents)."""
        t0 = time.perf_counter()
        self.annif.run("load-vocab", "--force", "--language", "en", VOCAB_ID, "vocab.tsv")
        timings["annif_load_vocab_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        for s in self.bases:
            self.train_project(s, "base", "base")
        timings["annif_base_training_s"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        for s in self.ensembles:
            if s in TRAINED_ENSEMBLES:
                self.train_project(s, "ens", "ensemble")
            if s == "ensemble-tuned":
                # Source weights as Annif's documentation suggests: annif hyperopt on held-out documents.
                say(f"Annif {s}: annif hyperopt of the source weights on the first {HYPEROPT_DOCS} of tune.tsv "
                    f"({HYPEROPT_TRIALS} trials, nDCG)")
                log = self.annif.work / "logs" / f"hyperopt-{s}.log"
                took = self.annif.run("hyperopt", "--trials", str(HYPEROPT_TRIALS), "--docs-limit", str(HYPEROPT_DOCS),
                                      "--metric", "NDCG", f"tate-{s}", "tune.tsv", log=log, heartbeat=f"hyperopt {s}")
                self.weights[s] = parse_hyperopt_sources(log.read_text(encoding="utf-8", errors="replace"))
                self.results[s]["hyperopt"] = {"corpus": "tune.tsv", "documents": min(HYPEROPT_DOCS, len(tune_docs)),
                                               "trials": HYPEROPT_TRIALS, "metric": "NDCG",
                                               "weights": self.weights[s], "hyperopt_s": took}
                say(f"Annif {s}: weights " + ", ".join(f"{k} {v:.3f}" for k, v in self.weights[s].items()))
                self.write_cfg()
        timings["annif_ensemble_training_s"] = time.perf_counter() - t1

    def optimize(self, tune_docs: Sequence[CatalogueRecord], vocab: Vocabulary, timings: dict[str, float]) -> None:
        """``annif optimize``: the limit and threshold with the best F1 (doc avg) on the tuning documents, per
        project, with the sources as the ensembles learnt them (trained on `train` only). `annif optimize`
        re-filters and re-scores every document 300 times in Python (about a minute per 150 documents
        here); the same grid runs on `annif index --limit 15` of the tuning documents instead, and
        `annif optimize` itself checks it on a sample for one project (annif_optimize_cross_check)."""
        t1 = time.perf_counter()
        tune_gold = [{vocab.index(t.id) for t in r.metadata.tags if t.id in vocab} for r in tune_docs]
        work = self.annif.work
        for s in self.systems:
            say(f"Annif {s}: annif optimize's grid on {len(tune_docs)} tuning artworks (rerank buckets "
                f"{TUNING_BUCKETS.start}-{TUNING_BUCKETS.stop - 1})")
            tune_out = work / "out" / f"{s}-tune.jsonl"
            (work / "out").mkdir(exist_ok=True)
            took = self.annif.run("index", "--force", "--limit", str(max(OPTIMIZE_LIMITS)), "--no-include-doc", "-O",
                                  str(tune_out), f"tate-{s}", "tune-text.tsv", heartbeat=f"annif index {s} (tuning documents)")
            tune_scored = read_index_output(tune_out, vocab, len(tune_docs))
            best = optimize_grid(tune_scored, tune_gold)
            opt = self.results[s]["optimize"] = {"corpus": "tune.tsv", "documents": len(tune_docs), "index_s": took,
                                                 "best": best, "chosen_by": "F1 score (doc avg)",
                                                 "limit": best["F1 score (doc avg)"]["limit"],
                                                 "threshold": best["F1 score (doc avg)"]["threshold"]}
            say(f"Annif {s}: best F1 (doc avg) {best['F1 score (doc avg)']['score']:.4f} at limit "
                f"{opt['limit']}, threshold {opt['threshold']:.2f}")
            if s == "omikuji" or (s == self.systems[0] and "omikuji" not in self.systems):
                n_check = min(OPTIMIZE_CHECK_DOCS, len(tune_docs))
                say(f"cross-check: annif optimize of {s} on the first {n_check} tuning documents against the grid here")
                log = work / "logs" / f"optimize-{s}.log"
                self.annif.run("optimize", "--jobs", "1", "--docs-limit", str(n_check), f"tate-{s}", "tune.tsv", log=log,
                               heartbeat=f"annif optimize {s}")
                theirs = parse_optimize(log.read_text(encoding="utf-8", errors="replace"))
                ours = optimize_grid(tune_scored[:n_check], tune_gold[:n_check])
                self.results[s]["annif_optimize_cross_check"] = {"documents": n_check, "annif_optimize": theirs,
                                                                 "grid_here": ours}
                say("  annif optimize " + ", ".join(f"{k} {v['score']:.4f} (limit {v['limit']}, threshold {v['threshold']:.2f})" for k, v in theirs.items()))
                say("  grid here      " + ", ".join(f"{k} {v['score']:.4f} (limit {v['limit']}, threshold {v['threshold']:.2f})" for k, v in ours.items()))
        timings["annif_optimize_s"] = time.perf_counter() - t1

    def refit(self, timings: dict[str, float]) -> None:
        """The base projects again on train + rerank (``full``); the ensembles keep what they learnt."""
        t1 = time.perf_counter()
        for s in self.bases:
            self.train_project(s, "full", "refit")
        timings["annif_refit_s"] = time.perf_counter() - t1

    def index(self, n_docs: int, vocab: Vocabulary, gold: Sequence[set[int]], rare: set[int],
              unseen: set[int]) -> dict[str, list[list[tuple[int, float]]]]:
        """``annif index`` of the evaluated artworks with every project: their scored suggestions,
        with each project's speed and metrics in :attr:`results`."""
        work = self.annif.work
        (work / "out").mkdir(exist_ok=True)
        scored: dict[str, list[list[tuple[int, float]]]] = {}
        for s in self.systems:
            res = self.results[s]
            res["settings"] = {**_COMMON, **PROJECT_SETTINGS[s]}
            out_file = work / "out" / f"{s}.jsonl"
            one_file = work / "out" / f"{s}-one.jsonl"
            # annif index on a file writes JSONL, one line per input document, in order.
            # Start-up and model loading: the same command on one document.
            res["load_s"] = self.annif.run("index", "--force", "--limit", "10", "--no-include-doc", "-O", str(one_file),
                                           f"tate-{s}", "one.tsv")
            say(f"Annif {s}: suggesting for {n_docs} evaluated artworks")
            res["index_s"] = self.annif.run("index", "--force", "--limit", "10", "--no-include-doc", "-O", str(out_file),
                                            f"tate-{s}", "dev.tsv", heartbeat=f"annif index {s}")
            res["suggest_s"] = res["index_s"] - res["load_s"]
            # On a busy machine the difference can drown in noise; then only the end-to-end figure stands.
            res["docs_per_s"] = n_docs / res["suggest_s"] if res["suggest_s"] > 0.1 * res["index_s"] else None
            res["docs_per_s_end_to_end"] = n_docs / res["index_s"]
            if s in ENSEMBLE_SYSTEMS:
                res["train_s"] = res.get("train_s", 0.0) + sum(self.results[src]["train_s"] for src in ENSEMBLE_SOURCES[s])
            scored[s] = read_index_output(out_file, vocab, n_docs)
            res["metrics"] = score(ranks_only(scored[s]), gold, rare, unseen)
            say(f"Annif {s}: F1@5 {res['metrics']['f1_at_5']:.3f}, nDCG@10 {res['metrics']['ndcg_at_10']:.3f}, "
                f"{res['docs_per_s'] or float('nan'):.1f} docs/s (index {res['index_s']:.1f} s, of which start-up and loading {res['load_s']:.1f} s)")
        return scored

    def add_optimized(self, scored: dict[str, list[list[tuple[int, float]]]], gold: Sequence[set[int]], rare: set[int],
                      unseen: set[int]) -> dict[str, list[list[int]]]:
        """The optimised limit and threshold applied to the same suggestions (what `annif index --limit L
        --threshold T` returns): a configuration of its own, '<system>+optimized'. Returns every
        configuration's rankings."""
        rankings = annif_rankings_of(scored, self.results)
        for s in self.systems:
            opt = self.results[s]["optimize"]
            tuned = f"{s}+optimized"
            self.results[tuned] = {
                "project": f"tate-{s}", "derived_from": s, "limit": opt["limit"], "threshold": opt["threshold"],
                "how": f"annif index --limit {opt['limit']} --threshold {opt['threshold']:.2f} (the suggestions of {s}, filtered)",
                "metrics": score(rankings[tuned], gold, rare, unseen),
                **{k: self.results[s][k] for k in ("train_s", "docs_per_s", "docs_per_s_end_to_end", "load_s", "index_s")}}
            m = self.results[tuned]["metrics"]
            say(f"Annif {tuned}: F1@5 {m['f1_at_5']:.3f}, nDCG@10 {m['ndcg_at_10']:.3f}")
        return rankings

    def cross_check_eval(self) -> None:
        """Annif's own evaluation of one project, as a check that arttag.quality.ranking counts the same way."""
        check = "omikuji" if "omikuji" in self.results else self.systems[0]
        say(f"cross-check: annif eval of {check} against arttag.quality.ranking")
        log = self.annif.work / "logs" / f"eval-{check}.log"
        self.annif.run("eval", "--limit", "10", "-m", "F1@5", "-m", "NDCG@10", "-m", "Precision@1", "-m", "Precision@5",
                       f"tate-{check}", "dev-gold.tsv", log=log)
        found = {}
        for line in log.read_text().splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() in ("F1@5", "NDCG@10", "Precision@1", "Precision@5"):
                found[name.strip()] = float(value.strip())
        ours = self.results[check]["metrics"]
        self.results[check]["annif_eval_cross_check"] = {
            "annif_eval": found,
            "arttag_metrics": {"F1@5": ours["f1_at_5"], "NDCG@10": ours["ndcg_at_10"],
                               "Precision@1": ours["p_at_1"], "Precision@5": ours["p_at_5"]}}
        say("  annif eval " + ", ".join(f"{k} {v:.4f}" for k, v in found.items()) + " | arttag.quality.ranking "
            + ", ".join(f"{k} {v:.4f}" for k, v in self.results[check]["annif_eval_cross_check"]["arttag_metrics"].items()))

    def reused_training_s(self) -> float:
        """Training time of the models this run took from an earlier one (as they took then)."""
        return sum(st["train_s"] for r in self.results.values() if "training" in r
                   for st in r["training"].values() if not st["trained_now"])


def annif_rankings_of(scored: dict[str, list[list[tuple[int, float]]]],
                      results: dict[str, dict[str, Any]]) -> dict[str, list[list[int]]]:
    """Each system's ranking as ``annif index --limit 10`` gave it, and as ``<system>+optimized``: the
    same suggestions filtered by the limit and threshold its ``annif optimize`` grid chose."""
    rankings: dict[str, list[list[int]]] = {}
    for s, suggestions in scored.items():
        opt = results[s]["optimize"]
        rankings[s] = ranks_only(suggestions)
        rankings[f"{s}+optimized"] = filter_suggestions(suggestions, opt["limit"], opt["threshold"])
    return rankings


def reused_annif(path: Path, view: str, work: Path, hashes: dict[str, str], version: str, systems: Sequence[str],
                 vocab: Vocabulary, gold: Sequence[set[int]], rare: set[int], unseen: set[int], n_docs: int,
                 refit: bool) -> tuple[dict[str, dict[str, Any]], dict[str, list[list[int]]], str]:
    """Annif's results, rankings and projects.cfg from an earlier run (``--reuse-annif``): the run's
    result file and the suggestions ``annif index`` wrote for the evaluated artworks. Refused
    (``SystemExit``) unless that run read the same inputs with the same Annif version and systems, and
    every configuration's stored figures are recomputed exactly from the suggestions on disk."""
    earlier = json.loads(path.read_text())
    if earlier["headline"].get("view") != view and "new_acquisitions" in earlier:
        earlier = earlier["new_acquisitions"]  # a random-view file the new-acquisitions run was merged into
    if earlier["data"].get("input_sha256") != hashes:
        raise SystemExit(f"{path}: Annif learnt from other inputs (vocabulary, corpora or evaluated artworks differ)")
    if earlier["annif"]["refit"] != refit:
        raise SystemExit(f"{path}: Annif was run {'with' if earlier['annif']['refit'] else 'without'} --refit")
    if earlier["annif"]["version"] != version:
        raise SystemExit(f"{path}: Annif {earlier['annif']['version']}, not the installed {version}")
    results: dict[str, dict[str, Any]] = earlier["annif"]["systems"]
    if sorted(s for s in results if "+" not in s) != sorted(systems):
        raise SystemExit(f"{path}: other Annif systems ({', '.join(results)})")
    rankings = annif_rankings_of({s: read_index_output(work / "out" / f"{s}.jsonl", vocab, n_docs) for s in systems},
                                 results)
    for name, ranked in rankings.items():
        again = score(ranked, gold, rare, unseen)
        if any(not np.isclose(again[k], results[name]["metrics"][k], rtol=0, atol=1e-12)
               for k in ("f1_at_5", "ndcg_at_10", "p_at_1")):
            raise SystemExit(f"{path}: Annif {name}'s suggestions on disk no longer give its stored figures")
    return results, rankings, earlier["annif"]["projects_cfg"]


def vocabulary_record(path: Path | None, thesaurus: Vocabulary | None) -> dict[str, Any]:
    """Where both systems' vocabulary came from, as the result file records it."""
    source = "every tag of the artworks learnt from, usage counted on them (as arttag train)"
    if path is None or thesaurus is None:
        return {"source": source}
    return {"source": source + ", plus every term of the thesaurus (arttag train --vocabulary), for both systems",
            "thesaurus": {"file": shown_path(path), "sha256": file_sha256(path), "terms": len(thesaurus)}}


# -- machine ------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return machine_details()


# -- report -------------------------------------------------------------------------------


def print_table(rows: dict[str, dict[str, Any]], best_annif: str) -> None:
    names = list(rows)
    width = max(14, *(len(n) + 2 for n in names))
    head = f"{'metric':<22}" + "".join(f"{n:>{width}}" for n in names) + f"{'arttag - best':>{width}}"
    print(head)
    print("-" * len(head))
    for m in [*METRICS, "docs_per_s", "train_s"]:
        cells = []
        for n in names:
            v = rows[n].get(m)
            cells.append(f"{'-':>{width}}" if v is None else f"{v:>{width}.{1 if m in ('docs_per_s', 'train_s') else 3}f}")
        a, b = rows["arttag"].get(m), rows[best_annif].get(m)
        diff = f"{'-':>{width}}" if a is None or b is None or m == "train_s" else f"{a - b:>+{width}.{1 if m == 'docs_per_s' else 3}f}"
        print(f"{m:<22}" + "".join(cells) + diff)


VIEW_LABELS = {"all": "whole view", "novel_text": "novel text", "isolated": "isolated",
               "isolated_novel_text": "isolated, novel text", "isolated_new_artist": "isolated, new artist",
               "isolated_new_artist_novel_text": "isolated, new artist, novel text"}


def score_views(masks: dict[str, list[bool]], gold: Sequence[set[int]], rare: set[int], unseen: set[int],
                rankings: dict[str, list[list[int]]]) -> dict[str, dict[str, Any]]:
    """Every system scored on each part of the evaluated artworks (:func:`arttag.quality.views.view_masks`);
    per part the best Annif configuration for F1@5 and, separately, for nDCG@10 (the anchor)."""
    out: dict[str, dict[str, Any]] = {}
    for name, flags in masks.items():
        sel = [i for i, f in enumerate(flags) if f]
        systems = {n: score([r[i] for i in sel], [gold[i] for i in sel], rare, unseen) for n, r in rankings.items()}
        best = best_per_metric(systems) if sel else {"f1_at_5": None, "ndcg_at_10": None}
        out[name] = {"artworks": len(sel), "annif_best": best, "systems": systems}
    return out


def anchor(view: dict[str, Any], metric: str) -> float | None:
    """The best Annif figure for ``metric`` in one scored view (None when no Annif system ran)."""
    best = view["annif_best"].get(metric)
    return view["systems"][f"annif-{best}"][metric] if best else None


def view_headline(per_view: dict[str, dict[str, Any]], prefix: str = "") -> dict[str, Any]:
    """``<prefix><view>_arttag_f1_at_5``, ``<prefix><view>_annif_best_f1_at_5``, ... and the lead
    (arttag minus the best Annif) for every part but the whole view (the headline's own keys)."""
    out: dict[str, Any] = {}
    for view, v in per_view.items():
        if view == "all":
            continue
        out[f"{prefix}{view}_artworks"] = v["artworks"]
        for metric in ("f1_at_5", "ndcg_at_10"):
            a = v["systems"].get("arttag", {}).get(metric)
            b = anchor(v, metric)
            out[f"{prefix}{view}_arttag_{metric}"] = a
            out[f"{prefix}{view}_annif_best_{metric}"] = b
            out[f"{prefix}{view}_lead_{metric}"] = a - b if a is not None and b is not None else None
    return out


def print_views(per_view: dict[str, dict[str, Any]]) -> None:
    print()
    print(f"{'part':<34}{'artworks':>9}{'arttag F1@5':>13}{'nDCG@10':>9}{'best Annif F1@5':>26}"
          f"{'best Annif nDCG@10':>28}{'lead F1@5':>11}{'nDCG@10':>9}")
    for name, v in per_view.items():
        a = v["systems"].get("arttag", {})
        bf, bn = anchor(v, "f1_at_5"), anchor(v, "ndcg_at_10")
        af, an = a.get("f1_at_5"), a.get("ndcg_at_10")
        nan = float("nan")
        print(f"{VIEW_LABELS.get(name, name):<34}{v['artworks']:>9}{af if af is not None else nan:>13.3f}"
              f"{an if an is not None else nan:>9.3f}"
              f"{(v['annif_best']['f1_at_5'] or '-'):>20}{bf if bf is not None else nan:>6.3f}"
              f"{(v['annif_best']['ndcg_at_10'] or '-'):>22}{bn if bn is not None else nan:>6.3f}"
              f"{af - bf if af is not None and bf is not None else nan:>+11.3f}"
              f"{an - bn if an is not None and bn is not None else nan:>+9.3f}")


def merge_new_acquisitions(path: Path, result: dict[str, Any]) -> None:
    """Adds a new-acquisitions run to the random-view result file (``new_acquisitions``, headline ``new_acq_*``)."""
    data = json.loads(path.read_text())
    h = result["headline"]
    ours, theirs = data["headline"].get("vocabulary", "catalogue"), h.get("vocabulary", "catalogue")
    if ours != theirs:
        raise SystemExit(f"{path} was measured with the vocabulary of the {ours}, the new-acquisitions run with "
                         f"that of the {theirs}: run both views with the same --vocabulary")
    ours_refit, theirs_refit = data.get("annif", {}).get("refit", False), result.get("annif", {}).get("refit", False)
    if ours_refit != theirs_refit:
        raise SystemExit(f"{path}: Annif was run {'with' if ours_refit else 'without'} --refit, the new-acquisitions "
                         f"run {'with' if theirs_refit else 'without'}: run both views the same way")
    data["new_acquisitions"] = {k: result[k] for k in ("headline", "views", "command", "finished_at", "data",
                                                        "annif", "arttag", "timings")}
    a_f, b_f, a_n, b_n = (h["arttag_f1_at_5"], h["annif_best_f1_at_5"], h["arttag_ndcg_at_10"], h["annif_best_ndcg_at_10"])
    data["headline"].update({
        "new_acq_arttag_f1_at_5": a_f, "new_acq_annif_best_f1_at_5": b_f,
        "new_acq_arttag_ndcg_at_10": a_n, "new_acq_annif_best_ndcg_at_10": b_n,
        "new_acq_lead_f1_at_5": a_f - b_f if a_f is not None else None,
        "new_acq_lead_ndcg_at_10": a_n - b_n if a_n is not None else None,
        "new_acq_annif_best_system": h["annif_best_system"], "new_acq_dev_artworks": h["dev_artworks"],
        "new_acq_arttag_model_version": h["arttag_model_version"],
        **view_headline(result["views"], prefix="new_acq_"),
    })
    data["headline"].setdefault("annif_best_system_per_view", {}).update(
        {f"new_acquisitions_{k}": v for k, v in h["annif_best_system_per_view"].items()})
    path.write_text(json.dumps(data, indent=2, default=float) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--catalogue", type=Path, default=DEFAULT_CATALOGUE, help="Tate-format JSON lines (gz)")
    p.add_argument("--bundle", type=Path, default=None, help="arttag bundle (default: CliSettings().bundle_dir)")
    p.add_argument("--cache", type=Path, default=REPO / ".cache", help="Annif's venv and work folder go here")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--annif-spec", default=ANNIF_SPEC, help="what pip installs when the venv is missing")
    p.add_argument("--systems", default=",".join(DEFAULT_SYSTEMS),
                   help=f"Annif projects to run, comma-separated, of {', '.join(ANNIF_SYSTEMS)} (default: all but svc)")
    p.add_argument("--jobs", type=int, default=2, help="annif train --jobs")
    p.add_argument("--train-limit", type=int, default=None, help="use only the first N training artworks (development)")
    p.add_argument("--dev-limit", type=int, default=None, help="use only the first N dev artworks (development)")
    p.add_argument("--retrain", action="store_true", help="train Annif even if a model for the same data exists")
    p.add_argument("--skip-arttag", action="store_true")
    p.add_argument("--batch-size", type=int, default=512,
                   help="arttag artworks ranked at a time (512, as `arttag evaluate`: rankings depend slightly on the batch)")
    p.add_argument("--refit", action="store_true",
                   help="after the ensembles and the tuning, train Annif's base projects again on train + rerank "
                        "(as arttag's scorers are refitted); doubles Annif's training time")
    p.add_argument("--embedding-cache", type=Path, default=None,
                   help="take arttag's dev embeddings for the quality figures from this .npz cache folder "
                        "(as `arttag evaluate --embedding-cache`); throughput then comes from a fresh pass")
    p.add_argument("--throughput-sample", type=int, default=None,
                   help="with --embedding-cache: time arttag on the first N dev artworks (default: all)")
    p.add_argument("--note", default=None, help="free text stored in the JSON (e.g. which bundle and why)")
    p.add_argument("--view", choices=("random", "new-acquisitions"), default="random",
                   help="random: the dev split (default); new-acquisitions: both systems learn from the artworks "
                        "acquired before --acquired-from (train + rerank of them) and are evaluated on those acquired "
                        "from it on (--bundle must be trained on the former only)")
    p.add_argument("--acquired-from", type=int, default=NEW_ACQUISITIONS_FROM)
    p.add_argument("--vocabulary", type=Path, default=None, metavar="THESAURUS",
                   help="the thesaurus the arttag bundle was trained with (`arttag train --vocabulary`): its terms "
                        "join both systems' vocabulary")
    p.add_argument("--merge-into", type=Path, default=None, metavar="JSON",
                   help="with --view new-acquisitions: also add this run's figures to that random-view result file "
                        "(its `new_acquisitions` and headline `new_acq_*`)")
    p.add_argument("--reuse-annif", type=Path, default=None, metavar="JSON",
                   help="take Annif's side from this earlier result file of the same view (its systems, and their "
                        "suggestions from the out/ files that run left in the work folder) instead of running Annif "
                        "again; refused unless the inputs, the Annif version and every stored figure match")
    p.add_argument("--merge-result", type=Path, default=None, metavar="JSON",
                   help="with --merge-into: add this earlier new-acquisitions result file to it and stop "
                        "(for runs of the two views side by side)")
    args = p.parse_args(argv)
    if args.merge_result:
        if not args.merge_into:
            p.error("--merge-result needs --merge-into")
        result = json.loads(args.merge_result.read_text())
        if result.get("headline", {}).get("view") != "new-acquisitions":
            p.error(f"{args.merge_result} is not a new-acquisitions result")
        merge_new_acquisitions(args.merge_into, result)
        say(f"new-acquisitions figures of {args.merge_result} added to {args.merge_into}")
        return 0

    started = datetime.now(timezone.utc)
    t_start = time.perf_counter()
    try:
        systems = with_sources([s.strip() for s in args.systems.split(",") if s.strip()])
    except ValueError as e:
        p.error(str(e))
    cache = args.cache.resolve()
    timings: dict[str, float] = {}
    say(f"quality benchmark: arttag vs Annif ({', '.join(systems)}) on {args.catalogue}")
    mach = machine()

    # 1. Annif
    t0 = time.perf_counter()
    annif = Annif(ensure_annif(cache, args.annif_spec),
                  cache / ("annif-bench" if args.view == "random" else f"annif-bench-{args.view}"))
    annif_version = annif.version()
    timings["annif_install_check_s"] = time.perf_counter() - t0

    # 2. data
    t0 = time.perf_counter()
    say(f"reading {args.catalogue}")
    records, cat_report = load_catalogue(args.catalogue)
    catalogue_sha256 = file_sha256(args.catalogue)
    tagged = [r for r in records if r.metadata.tags]
    if args.view == "new-acquisitions":
        pool, dev = split_by_acquisition(tagged, args.acquired_from)
        train = [r for r in pool if split_of(r.artwork_id) != "dev"]
    else:
        train = [r for r in tagged if split_of(r.artwork_id) != "dev"]
        dev = [r for r in tagged if split_of(r.artwork_id) == "dev"]
    if args.train_limit:
        train = train[: args.train_limit]
    if args.dev_limit:
        dev = dev[: args.dev_limit]
    bundle_dir = args.bundle
    if bundle_dir is None:
        from arttag.settings import CliSettings

        bundle_dir = CliSettings().bundle_dir
    have_bundle = (bundle_dir / "manifest.json").exists() and not args.skip_arttag
    # The vocabulary as `arttag train` builds it: the tags of the artworks learnt from, plus the
    # thesaurus; it fixes the tag indices both systems are scored in. Annif's subject vocabulary is
    # the same tag set. A dev tag outside it counts as missed (a negative id no ranking holds).
    from arttag.catalogue.vocabulary import load_vocabulary

    thesaurus = load_vocabulary(args.vocabulary) if args.vocabulary else None
    vocab = build_vocabulary(train, train, thesaurus)
    gold = held_out_gold(dev, vocab)
    # Rare / never seen: counted over the artworks Annif trains on, train + rerank, which are also
    # what arttag's scorers are fitted on (`refit_on_rerank`, the default) and what `arttag evaluate` counts.
    rare, unseen = rare_and_unseen(train, vocab, gold)
    train_texts = {build_text(r.metadata) for r in train}
    novel = [build_text(r.metadata) not in train_texts for r in dev]
    masks = {"all": [True] * len(dev), "novel_text": novel}
    for name, flags in view_masks([r.metadata for r in dev], [r.metadata for r in train]).items():
        masks[name] = flags
        masks[f"{name}_novel_text"] = [f and n for f, n in zip(flags, novel)]
    say(f"{len(records)} artworks ({len(cat_report.bad_rows)} bad rows skipped), {len(tagged)} tagged: "
        f"Annif and arttag learn from {len(train)} (train + rerank), both are evaluated on {len(dev)} artworks; "
        f"{len(vocab)} tags ({len(rare)} rare, {len(unseen)} never in train + rerank)")
    # Annif's corpora. Base projects first learn from `train` only, so that the learning ensembles
    # (PAV, NN) fit on suggestions for documents their sources never saw (rerank buckets 10-19), and
    # `annif optimize` / `annif hyperopt` tune on other unseen documents (rerank buckets 20-24). With
    # --refit, the base projects then learn again from train + rerank, as arttag's scorers do after
    # its re-ranker has learnt (the ensembles keep what they learnt, as arttag's re-ranker does).
    base = [r for r in train if split_of(r.artwork_id) == "train"]
    ens_docs = [r for r in train if bucket(r.artwork_id) in ENSEMBLE_HOLDOUT_BUCKETS]
    tune_docs = [r for r in train if bucket(r.artwork_id) in TUNING_BUCKETS]
    say(f"Annif corpora: base {len(base)} (train split), ensemble learning {len(ens_docs)} and tuning "
        f"{len(tune_docs)} (rerank split), refit {len(train)} (train + rerank)" + ("" if args.refit else " (not used: no --refit)"))
    hashes = write_inputs(annif.work, vocab, {"base": base, "ens": ens_docs, "tune": tune_docs, "full": train}, dev)
    punkt = ensure_punkt(annif, [build_text(r.metadata) for r in base])
    timings["data_s"] = time.perf_counter() - t0

    if args.reuse_annif:
        say(f"Annif: reusing the run of {args.reuse_annif} (its suggestions in {annif.work / 'out'})")
        t0 = time.perf_counter()
        annif_results, annif_rankings, cfg = reused_annif(args.reuse_annif, args.view, annif.work, hashes,
                                                          annif_version, systems, vocab, gold, rare, unseen, len(dev),
                                                          args.refit)
        timings["annif_total_s"] = time.perf_counter() - t0
        timings["annif_training_reused_s"] = 0.0
    else:
        # 3. Annif: vocabulary, training (reused when data and settings match), tuning, refit, indexing
        t0 = time.perf_counter()
        annif_run = AnnifRun(annif, systems, hashes, annif_version, punkt, args.jobs, args.retrain)
        annif_results = annif_run.results
        annif_run.train(tune_docs, timings)
        annif_run.optimize(tune_docs, vocab, timings)
        if args.refit:
            annif_run.refit(timings)
        cfg = annif_run.write_cfg()
        annif_rankings = annif_run.add_optimized(annif_run.index(len(dev), vocab, gold, rare, unseen), gold, rare, unseen)
        annif_run.cross_check_eval()
        timings["annif_total_s"] = time.perf_counter() - t0
        timings["annif_training_reused_s"] = annif_run.reused_training_s()

    # 4. arttag
    arttag_result: dict[str, Any] | None = None
    if have_bundle:
        t0 = time.perf_counter()
        emb_cache = None
        if args.embedding_cache:
            # A private copy: the cache may be written by a training run at the same time, and this
            # benchmark adds the embeddings it lacks only to its own copy.
            emb_cache = annif.work / "arttag-embeddings"
            emb_cache.mkdir(exist_ok=True)
            # Each .npz with its .npz.json sidecar: without the sidecar (which export wrote the
            # vectors) the cache is not trusted and every text is encoded again.
            for f in [*Path(args.embedding_cache).glob("*.npz"), *Path(args.embedding_cache).glob("*.npz.json")]:
                shutil.copy2(f, emb_cache / f.name)
        run = run_arttag(bundle_dir, dev, args.batch_size, vocab, emb_cache, args.throughput_sample)
        tagger = run.pop("tagger")
        manifest = tagger.manifest
        metrics = {n: score(r, gold, rare, unseen) for n, r in run["rankings"].items()}
        trained = manifest.get("training", {})
        train_s = sum(v for v in (trained.get("timings") or {}).values() if isinstance(v, (int, float))) or None
        arttag_result = {
            "bundle": shown_path(bundle_dir),
            "arttag_code": shown_path(Path(sys.modules["arttag"].__file__).parent),
            "model_version": tagger.model_version,
            "created_at": manifest.get("created_at"),
            "encoder": manifest["encoder"]["name"],
            "trained_on": (shown_path(manifest["data"]["path"]) if str(manifest.get("data", {}).get("path", "")).startswith("/")
                           else manifest.get("data", {}).get("path")),
            "trained_on_sha256": manifest.get("data", {}).get("sha256"),
            "trained_on_this_catalogue": manifest.get("data", {}).get("sha256") == catalogue_sha256,
            "artworks_per_split_at_training": trained.get("artworks"),
            "scorers_fitted_on": trained.get("scorers_fitted_on", ["train"]),
            "scorers": [s.name for s in tagger.ensemble.scorers],
            "bundle_vocabulary_is_the_catalogues": run["same_vocabulary"],
            "metrics": metrics["ensemble"],
            "scorer_metrics": {n: m for n, m in metrics.items() if n != "ensemble"},
            "manifest_dev_metrics": (manifest.get("metrics") or {}).get("headline"),
            "load_s": run["load_s"],
            "rank_s": run["rank_s"],
            "docs_per_s": run["timed_docs"] / run["rank_s"],
            "docs_per_s_end_to_end": run["timed_docs"] / (run["rank_s"] + run["load_s"]),
            "throughput_docs": run["timed_docs"],
            "quality_pass_embeddings": "from the embedding cache" if run["embeddings_from_cache"] else "encoded afresh (the timed pass)",
            "train_s": train_s,
            "training_timings": trained.get("timings"),
            "train_s_note": "the sum of the bundle manifest's training timings; its embed_s is small when "
                            "`arttag train` took the embeddings from its .npz cache",
        }
        say(f"arttag: F1@5 {metrics['ensemble']['f1_at_5']:.3f}, nDCG@10 {metrics['ensemble']['ndcg_at_10']:.3f}, "
            f"{arttag_result['docs_per_s']:.1f} docs/s")
        timings["arttag_total_s"] = time.perf_counter() - t0
    elif not args.skip_arttag:
        say(f"no arttag bundle at {bundle_dir}: the arttag column is left out")

    # 5. report
    per_view = score_views(masks, gold, rare, unseen,
                           {**({"arttag": run["rankings"]["ensemble"]} if arttag_result else {}),
                            **{f"annif-{s}": r for s, r in annif_rankings.items()}})
    whole = per_view["all"]
    best_annif = whole["annif_best"]["f1_at_5"]
    best_annif_ndcg = whole["annif_best"]["ndcg_at_10"]
    fastest_annif = max(annif_results, key=lambda s: annif_results[s]["docs_per_s"] or 0.0)
    rows: dict[str, dict[str, Any]] = {}
    if arttag_result:
        rows["arttag"] = {**arttag_result["metrics"], "docs_per_s": arttag_result["docs_per_s"],
                          "train_s": arttag_result["train_s"]}
    for s, res in annif_results.items():
        rows[f"annif-{s}"] = {**res["metrics"], "docs_per_s": res["docs_per_s"], "train_s": res["train_s"]}
    total_s = time.perf_counter() - t_start
    print()
    print(f"evaluated: {len(dev)} tagged artworks; best Annif configuration by F1@5: {best_annif}, by nDCG@10: {best_annif_ndcg}")
    for s, res in annif_results.items():
        print(f"  annif-{s:<26} F1@5 {res['metrics']['f1_at_5']:.3f}  nDCG@10 {res['metrics']['ndcg_at_10']:.3f}")
    if arttag_result:
        print_table({"arttag": rows["arttag"], f"annif-{best_annif}": rows[f"annif-{best_annif}"]}, f"annif-{best_annif}")
    print("docs_per_s: suggestions per second after start-up and model loading; train_s: training wall time "
          "(Annif: both rounds, ensembles with their sources; arttag: from the bundle manifest, embeddings possibly from a cache)")
    extra = timings["annif_training_reused_s"]
    print(f"whole benchmark: {total_s:.0f} s ({total_s / 60:.1f} min)" + (
        f"; with the reused Annif training ({extra:.0f} s when it ran): {(total_s + extra) / 60:.1f} min" if extra else ""))

    env_prefix = (f"PYTHONPATH={shlex.quote(':'.join(shown_path(x) for x in os.environ['PYTHONPATH'].split(':')))} "
                  if os.environ.get("PYTHONPATH") else "")
    words = [shown_path(a) if a.startswith("/") else a for a in (argv if argv is not None else sys.argv[1:])]
    command = env_prefix + "nice -n 10 .venv/bin/python bench/quality_vs_annif.py" + (
        " " + " ".join(shlex.quote(a) for a in words) if words else "")
    best = annif_results[best_annif]
    out = {
        "headline": {
            "arttag_f1_at_5": arttag_result["metrics"]["f1_at_5"] if arttag_result else None,
            "annif_best_f1_at_5": best["metrics"]["f1_at_5"],
            "arttag_ndcg_at_10": arttag_result["metrics"]["ndcg_at_10"] if arttag_result else None,
            "annif_best_ndcg_at_10": annif_results[best_annif_ndcg]["metrics"]["ndcg_at_10"],
            "lead_f1_at_5": (arttag_result["metrics"]["f1_at_5"] - best["metrics"]["f1_at_5"]) if arttag_result else None,
            "lead_ndcg_at_10": (arttag_result["metrics"]["ndcg_at_10"] - annif_results[best_annif_ndcg]["metrics"]["ndcg_at_10"])
            if arttag_result else None,
            "arttag_docs_per_s": arttag_result["docs_per_s"] if arttag_result else None,
            "annif_best_docs_per_s": best["docs_per_s"],
            "annif_best_system": best_annif,
            "annif_best_system_ndcg_at_10": best_annif_ndcg,
            "annif_configurations": len(annif_results),
            "annif_fastest_system": fastest_annif,
            "annif_fastest_docs_per_s": annif_results[fastest_annif]["docs_per_s"],
            "dev_artworks": len(dev),
            "arttag_model_version": arttag_result["model_version"] if arttag_result else None,
            "arttag_bundle_trained_on_this_catalogue": arttag_result["trained_on_this_catalogue"] if arttag_result else None,
            "view": args.view,
            "vocabulary": "catalogue + thesaurus" if args.vocabulary else "catalogue",
            "annif_version": annif_version,
            "annif_best_system_per_view": {v: r["annif_best"] for v, r in per_view.items()},
            **view_headline(per_view),
        },
        "views": per_view,
        "command": command,
        "note": args.note,
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "total_s": total_s,
        "total_including_reused_training_s": total_s + timings["annif_training_reused_s"],
        "timings": timings,
        "machine": {**mach, "load_average_at_end": list(os.getloadavg()),
                    "shared": "2 cores shared with other jobs; throughput and times are indicative"},
        "data": {
            "catalogue": shown_path(args.catalogue), "sha256": catalogue_sha256,
            "rows_read": cat_report.rows_read, "bad_rows": len(cat_report.bad_rows),
            "tagged_artworks": len(tagged), "annif_train_artworks": len(train), "dev_artworks": len(dev),
            "split_rule": SPLIT_RULE,
            "annif_trains_on": (
                "base projects: the train split, then (refit) train + rerank, as arttag's scorers; PAV and NN "
                f"ensembles: rerank buckets {ENSEMBLE_HOLDOUT_BUCKETS.start}-{ENSEMBLE_HOLDOUT_BUCKETS.stop - 1} with sources "
                f"trained on train only; annif optimize and hyperopt: rerank buckets {TUNING_BUCKETS.start}-{TUNING_BUCKETS.stop - 1}; "
                "nothing learns or is tuned on the evaluated artworks") if args.refit else (
                "base projects: the train split only (no --refit); PAV and NN ensembles: rerank buckets "
                f"{ENSEMBLE_HOLDOUT_BUCKETS.start}-{ENSEMBLE_HOLDOUT_BUCKETS.stop - 1}; annif optimize and hyperopt: rerank buckets "
                f"{TUNING_BUCKETS.start}-{TUNING_BUCKETS.stop - 1}"),
            "annif_corpora": {"base": len(base), "ensemble": len(ens_docs), "tuning": len(tune_docs), "refit": len(train)},
            "text": "arttag.catalogue.text.build_text for both systems",
            "vocabulary": {**vocabulary_record(args.vocabulary, thesaurus), "tags": len(vocab), "rare_tags": len(rare),
                           "never_trained_tags": len(unseen)},
            "rare_definition": f"tags used by 1-{RARE_MAX_USES} tagged artworks of train + rerank (what Annif and arttag's refitted scorers learn from, as `arttag evaluate` counts)",
            "unseen_definition": "tags no tagged train or rerank artwork uses",
            "train_limit": args.train_limit, "dev_limit": args.dev_limit, "input_sha256": hashes,
        },
        "metric_code": "arttag.quality.ranking.ranking_metrics and subset_recall, on top-10 ranked tag lists",
        "arttag": arttag_result,
        "annif": {
            "version": annif_version, "venv": shown_path(annif.venv), "pip_spec": args.annif_spec,
            "refit": args.refit,
            "reused_from": shown_path(args.reuse_annif) if args.reuse_annif else None,
            "configurations": ("every project as trained (annif index --limit 10), and each with the limit and threshold "
                               "`annif optimize` chose on the tuning documents (best F1, doc avg): '<system>+optimized'"),
            "projects_cfg": cfg, "punkt_tab": punkt, "train_jobs": args.jobs,
            "vocabulary_format": "TSV <uri>\\tlabel, annif load-vocab --language en (' - non-specific' dropped from labels)",
            "corpus_format": "short-text TSV: text\\t<uri> <uri> ...",
            "suggest": "annif index PROJECT dev.tsv --limit 10 -O out.jsonl; docs_per_s excludes start-up and model "
                       "loading, measured by the same command on one document",
            "systems": annif_results,
        },
    }
    if args.view == "new-acquisitions":
        out["data"]["view"] = (f"new acquisitions: learn from the tagged artworks acquired before {args.acquired_from} "
                               f"(train + rerank of them), evaluate on those acquired from {args.acquired_from} on")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=float) + "\n")
    say(f"results written to {args.out}")
    print_views(per_view)
    if args.merge_into and args.view == "new-acquisitions":
        merge_new_acquisitions(args.merge_into, out)
        say(f"new-acquisitions figures added to {args.merge_into}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
