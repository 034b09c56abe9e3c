"""Side-by-side quality benchmark: arttag against Annif on the same Tate dev split, scored by the same code.

What it does, in order (each step prints what it is doing; long ones print progress):

1. makes sure Annif (PyPI ``annif`` with the ``omikuji`` and ``fasttext`` extras) is installed in
   its own virtual environment under the cache folder (``<cache>/annif-venv``), creating it if missing;
2. reads the catalogue and splits it with :func:`arttag.catalogue.split.split_of`. Annif learns from every
   tagged artwork outside ``dev`` (``train`` + ``rerank``: what arttag's scorers and re-ranker saw
   together); both systems are evaluated on the tagged ``dev`` artworks;
3. writes Annif's subject vocabulary (TSV, ``<uri>\\tlabel``, loaded with ``annif load-vocab``), its
   short-text training corpus (TSV, ``text\\t<uri> <uri>...``) and the dev documents, all with the
   text of :func:`arttag.catalogue.text.build_text` (the text arttag's models see);
4. trains Annif's ``tfidf``, ``omikuji`` (Parabel settings), ``fasttext`` and ``mllm`` projects
   (``annif train``), and a plain ``ensemble`` of omikuji, fasttext and mllm (nothing to train);
5. runs ``annif index`` over the dev documents for each project, reads the JSONL results back as
   ranked tag lists, and times it (a one-document run gives the start-up and model-loading cost);
6. ranks the dev artworks with the arttag bundle (``--bundle``), encoding every text afresh, timed;
7. scores every system with :mod:`arttag.quality.ranking` (P@1, P@3, P@5, R@5, F1@5, nDCG@10, recall@10 on
   rare and on never-trained tags), prints one table side by side with the difference, and writes
   ``bench/results/quality_vs_annif.json``.

Run (about 30-40 minutes on 2 cores, most of it Annif's training; heavy, so niced)::

    nice -n 10 .venv/bin/python bench/quality_vs_annif.py

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
from arttag.catalogue.split import SPLIT_RULE, split_of
from arttag.catalogue.text import build_text
from arttag.catalogue.vocabulary import Vocabulary
from arttag.checksums import file_sha256
from arttag.quality.ranking import ranking_metrics, subset_recall
from arttag.quality.views import NEW_ACQUISITIONS_FROM, split_by_acquisition, view_masks
from machine_info import machine_details

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CATALOGUE = REPO.parent / "shared" / "data" / "tate" / "artworks.jsonl.gz"
DEFAULT_OUT = REPO / "bench" / "results" / "quality_vs_annif.json"
ANNIF_SPEC = "annif[omikuji,fasttext]"
URI_PREFIX = "http://arttag.invalid/tate/tag/"
"""Annif wants a URI per subject; ``.invalid`` is a reserved top-level domain, so these never resolve."""
VOCAB_ID = "tate"
RARE_MAX_USES = 2

# The Annif projects, in the order they are trained; the ensemble comes last (it only merges).
ANNIF_SYSTEMS = ("tfidf", "omikuji", "fasttext", "mllm", "ensemble")
ENSEMBLE_SOURCES = ("omikuji", "fasttext", "mllm")
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
    "ensemble": {"backend": "ensemble", "sources": ",".join(f"tate-{s}:1" for s in ENSEMBLE_SOURCES)},
}
METRICS = ("p_at_1", "p_at_3", "p_at_5", "r_at_5", "f1_at_5", "ndcg_at_10", "rare_recall_at_10",
           "unseen_recall_at_10")


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


def write_inputs(work: Path, vocab: Vocabulary, train: Sequence[CatalogueRecord],
                 dev: Sequence[CatalogueRecord]) -> dict[str, str]:
    """vocab.tsv, train.tsv and dev.tsv; returns each file's sha256."""
    work.mkdir(parents=True, exist_ok=True)
    with open(work / "vocab.tsv", "w", encoding="utf-8") as fh:
        for t in vocab:
            fh.write(f"<{tag_uri(t.id)}>\t{annif_label(t.label)}\n")
    with open(work / "train.tsv", "w", encoding="utf-8") as fh:
        for r in train:
            uris = " ".join(f"<{tag_uri(i)}>" for i in sorted({t.id for t in r.metadata.tags}) if i in vocab)
            if uris:
                fh.write(f"{_one_line(build_text(r.metadata))}\t{uris}\n")
    with open(work / "dev.tsv", "w", encoding="utf-8") as fh:
        for r in dev:
            fh.write(_one_line(build_text(r.metadata)) + "\n")
    with open(work / "dev-gold.tsv", "w", encoding="utf-8") as fh:  # for the `annif eval` cross-check
        for r in dev:
            uris = " ".join(f"<{tag_uri(i)}>" for i in sorted({t.id for t in r.metadata.tags}) if i in vocab)
            fh.write(f"{_one_line(build_text(r.metadata))}\t{uris}\n")
    with open(work / "one.tsv", "w", encoding="utf-8") as fh:
        fh.write(_one_line(build_text(dev[0].metadata)) + "\n")
    return {name: file_sha256(work / name) for name in ("vocab.tsv", "train.tsv", "dev.tsv")}


def _one_line(text: str) -> str:
    return " ".join(text.split())


def projects_cfg(systems: Sequence[str]) -> str:
    out = []
    for s in systems:
        settings = {"name": f"Tate {s}", **_COMMON, **PROJECT_SETTINGS[s]}
        if s == "ensemble":
            settings.pop("analyzer")
        out.append(f"[tate-{s}]\n" + "".join(f"{k}={v}\n" for k, v in settings.items()))
    return "\n".join(out)


def read_index_output(path: Path, vocab: Vocabulary, n_docs: int) -> list[list[int]]:
    """``annif index`` JSONL (one line per document, in input order) -> ranked vocabulary indices."""
    rankings = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            results = json.loads(line)["results"]
            ranked = []
            for r in sorted(results, key=lambda r: -r["score"]):
                tag_id = r["uri"].removeprefix(URI_PREFIX)
                if tag_id in vocab:
                    ranked.append(vocab.index(tag_id))
            rankings.append(ranked)
    if len(rankings) != n_docs:
        raise SystemExit(f"{path}: {len(rankings)} result lines for {n_docs} documents")
    return rankings


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
    per part the best Annif system by F1@5."""
    out: dict[str, dict[str, Any]] = {}
    for name, flags in masks.items():
        sel = [i for i, f in enumerate(flags) if f]
        systems = {n: score([r[i] for i in sel], [gold[i] for i in sel], rare, unseen) for n, r in rankings.items()}
        annif = [n for n in systems if n.startswith("annif-")]
        best = max(annif, key=lambda n: systems[n]["f1_at_5"]) if annif and sel else None
        out[name] = {"artworks": len(sel), "annif_best": best.removeprefix("annif-") if best else None,
                     "systems": systems}
    return out


def view_headline(per_view: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``isolated_arttag_f1_at_5``, ``isolated_annif_best_f1_at_5``... for the isolated parts."""
    out: dict[str, Any] = {}
    for view in ("isolated", "isolated_new_artist"):
        v = per_view.get(view)
        if not v:
            continue
        out[f"{view}_artworks"] = v["artworks"]
        for metric in ("f1_at_5", "ndcg_at_10"):
            out[f"{view}_arttag_{metric}"] = v["systems"].get("arttag", {}).get(metric)
            out[f"{view}_annif_best_{metric}"] = (v["systems"][f"annif-{v['annif_best']}"][metric]
                                                 if v["annif_best"] else None)
    return out


def print_views(per_view: dict[str, dict[str, Any]]) -> None:
    print()
    print(f"{'part':<34}{'artworks':>9}{'arttag F1@5':>13}{'nDCG@10':>9}{'best Annif':>18}{'F1@5':>7}{'nDCG@10':>9}")
    for name, v in per_view.items():
        a = v["systems"].get("arttag", {})
        b = v["systems"].get(f"annif-{v['annif_best']}", {}) if v["annif_best"] else {}
        print(f"{VIEW_LABELS.get(name, name):<34}{v['artworks']:>9}{a.get('f1_at_5', float('nan')):>13.3f}"
              f"{a.get('ndcg_at_10', float('nan')):>9.3f}{v['annif_best'] or '-':>18}"
              f"{b.get('f1_at_5', float('nan')):>7.3f}{b.get('ndcg_at_10', float('nan')):>9.3f}")


def merge_new_acquisitions(path: Path, result: dict[str, Any]) -> None:
    """Adds a new-acquisitions run to the random-view result file (``new_acquisitions``, headline ``new_acq_*``)."""
    data = json.loads(path.read_text())
    h = result["headline"]
    data["new_acquisitions"] = {k: result[k] for k in ("headline", "views", "command", "finished_at", "data")}
    data["headline"].update({
        "new_acq_arttag_f1_at_5": h["arttag_f1_at_5"], "new_acq_annif_best_f1_at_5": h["annif_best_f1_at_5"],
        "new_acq_arttag_ndcg_at_10": h["arttag_ndcg_at_10"], "new_acq_annif_best_ndcg_at_10": h["annif_best_ndcg_at_10"],
        "new_acq_annif_best_system": h["annif_best_system"], "new_acq_dev_artworks": h["dev_artworks"],
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
    p.add_argument("--systems", default=",".join(ANNIF_SYSTEMS), help="Annif projects to run, comma-separated")
    p.add_argument("--jobs", type=int, default=2, help="annif train --jobs")
    p.add_argument("--train-limit", type=int, default=None, help="use only the first N training artworks (development)")
    p.add_argument("--dev-limit", type=int, default=None, help="use only the first N dev artworks (development)")
    p.add_argument("--retrain", action="store_true", help="train Annif even if a model for the same data exists")
    p.add_argument("--skip-arttag", action="store_true")
    p.add_argument("--batch-size", type=int, default=512,
                   help="arttag artworks ranked at a time (512, as `arttag evaluate`: rankings depend slightly on the batch)")
    p.add_argument("--reuse-annif", type=Path, default=None, metavar="JSON",
                   help="take Annif's timings from this earlier result file of the same data and re-score its "
                        "saved suggestions (<cache>/annif-bench/out/) instead of running Annif again")
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
    args = p.parse_args(argv)

    started = datetime.now(timezone.utc)
    t_start = time.perf_counter()
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(systems) - set(ANNIF_SYSTEMS)
    if unknown:
        p.error(f"unknown Annif systems {sorted(unknown)}; known: {', '.join(ANNIF_SYSTEMS)}")
    if "ensemble" in systems:
        systems = [*dict.fromkeys([*(s for s in systems if s != "ensemble"), *ENSEMBLE_SOURCES, "ensemble"])]
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
    from arttag.model.training import build_vocabulary, held_out_gold

    thesaurus = load_vocabulary(args.vocabulary) if args.vocabulary else None
    vocab = build_vocabulary(train, train, thesaurus)
    gold = held_out_gold(dev, vocab)
    # Rare / never seen: counted over the artworks Annif trains on, train + rerank, which are also
    # what arttag's scorers are fitted on (`refit_on_rerank`, the default) and what `arttag evaluate` counts.
    counts: dict[str, int] = {}
    for r in train:
        for tid in {t.id for t in r.metadata.tags}:
            counts[tid] = counts.get(tid, 0) + 1
    usage = np.array([counts.get(t.id, 0) for t in vocab])
    rare = set(np.flatnonzero((usage >= 1) & (usage <= RARE_MAX_USES)).tolist())
    unseen = set(np.flatnonzero(usage == 0).tolist()) | {t for g in gold for t in g if t < 0}
    train_texts = {build_text(r.metadata) for r in train}
    novel = [build_text(r.metadata) not in train_texts for r in dev]
    masks = {"all": [True] * len(dev), "novel_text": novel}
    for name, flags in view_masks([r.metadata for r in dev], [r.metadata for r in train]).items():
        masks[name] = flags
        masks[f"{name}_novel_text"] = [f and n for f, n in zip(flags, novel)]
    say(f"{len(records)} artworks ({len(cat_report.bad_rows)} bad rows skipped), {len(tagged)} tagged: "
        f"Annif trains on {len(train)} (train + rerank), both are evaluated on {len(dev)} dev artworks; "
        f"{len(vocab)} tags ({len(rare)} rare, {len(unseen)} never in train + rerank)")
    hashes = write_inputs(annif.work, vocab, train, dev)
    punkt = ensure_punkt(annif, [build_text(r.metadata) for r in train])
    cfg = projects_cfg(systems)
    (annif.work / "projects.cfg").write_text(cfg)
    timings["data_s"] = time.perf_counter() - t0

    # 3. Annif: vocabulary, training (reused when data and settings match), indexing
    record_path = annif.work / "train-record.json"
    train_record: dict[str, Any] = json.loads(record_path.read_text()) if record_path.exists() else {}
    t0 = time.perf_counter()
    annif_results: dict[str, dict[str, Any]] = {}
    annif_rankings: dict[str, list[list[int]]] = {}
    reused_from = None
    if args.reuse_annif:
        prev = json.loads(args.reuse_annif.read_text())
        if prev["data"]["input_sha256"] != hashes or prev["annif"]["projects_cfg"] != cfg:
            raise SystemExit(f"{args.reuse_annif} was made from other data or settings; run Annif again")
        reused_from = {"file": str(args.reuse_annif), "finished_at": prev["finished_at"],
                       "machine": prev["machine"]}
        say(f"Annif: reusing the run that finished at {prev['finished_at']} ({args.reuse_annif}), re-scoring its suggestions")
        for s in systems:
            res = dict(prev["annif"]["systems"][s])
            annif_rankings[s] = read_index_output(annif.work / "out" / f"{s}.jsonl", vocab, len(dev))
            res["metrics"] = score(annif_rankings[s], gold, rare, unseen)
            res["reused"] = True
            annif_results[s] = res
    else:
        annif.run("load-vocab", "--force", "--language", "en", VOCAB_ID, "vocab.tsv")
    timings["annif_load_vocab_s"] = time.perf_counter() - t0
    (annif.work / "out").mkdir(exist_ok=True)
    for s in systems if not reused_from else []:
        res: dict[str, Any] = {"project": f"tate-{s}", "settings": {**_COMMON, **PROJECT_SETTINGS[s]}}
        if s != "ensemble":
            trained_on = {k: hashes[k] for k in ("vocab.tsv", "train.tsv")}
            key = hashlib.sha256(json.dumps([trained_on, PROJECT_SETTINGS[s], _COMMON, annif_version, punkt],
                                            sort_keys=True).encode()).hexdigest()
            previous = train_record.get(s)
            model_dir = annif.work / "data" / "projects" / f"tate-{s}"
            if previous and previous["key"] == key and model_dir.is_dir() and not args.retrain:
                say(f"Annif {s}: reusing the model trained on the same data at {previous['trained_at']}")
                res["train_s"], res["trained_now"] = previous["train_s"], False
            else:
                say(f"Annif {s}: training on {len(train)} artworks (--jobs {args.jobs})")
                res["train_s"] = annif.run("train", "--jobs", str(args.jobs), "-v", "INFO", f"tate-{s}",
                                           "train.tsv", heartbeat=f"training {s}",
                                           log=annif.work / "logs" / f"train-{s}.log")
                res["trained_now"] = True
                train_record[s] = {"key": key, "train_s": res["train_s"],
                                   "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
                record_path.write_text(json.dumps(train_record, indent=2) + "\n")
            say(f"Annif {s}: trained in {res['train_s']:.0f} s")
        out_file = annif.work / "out" / f"{s}.jsonl"
        one_file = annif.work / "out" / f"{s}-one.jsonl"
        # annif index on a file writes JSONL, one line per input document, in order.
        # Start-up and model loading: the same command on one document, best of two.
        res["load_s"] = min(annif.run("index", "--force", "--limit", "10", "--no-include-doc", "-O", str(one_file),
                                      f"tate-{s}", "one.tsv") for _ in range(2))
        say(f"Annif {s}: suggesting for {len(dev)} dev artworks")
        res["index_s"] = annif.run("index", "--force", "--limit", "10", "--no-include-doc", "-O", str(out_file),
                                   f"tate-{s}", "dev.tsv", heartbeat=f"annif index {s}")
        res["suggest_s"] = res["index_s"] - res["load_s"]
        # On a busy machine the difference can drown in noise; then only the end-to-end figure stands.
        res["docs_per_s"] = len(dev) / res["suggest_s"] if res["suggest_s"] > 0.1 * res["index_s"] else None
        res["docs_per_s_end_to_end"] = len(dev) / res["index_s"]
        rankings = annif_rankings[s] = read_index_output(out_file, vocab, len(dev))
        res["metrics"] = score(rankings, gold, rare, unseen)
        say(f"Annif {s}: F1@5 {res['metrics']['f1_at_5']:.3f}, nDCG@10 {res['metrics']['ndcg_at_10']:.3f}, "
            f"{res['docs_per_s'] or float('nan'):.1f} docs/s (index {res['index_s']:.1f} s, of which start-up and loading {res['load_s']:.1f} s)")
        annif_results[s] = res
    check = "omikuji" if "omikuji" in annif_results else next(iter(annif_results))
    if not reused_from:
        # Annif's own evaluation of one project, as a check that arttag.quality.ranking counts the same way.
        say(f"cross-check: annif eval of {check} against arttag.quality.ranking")
        annif.run("eval", "--limit", "10", "-m", "F1@5", "-m", "NDCG@10", "-m", "Precision@1", "-m", "Precision@5",
                  f"tate-{check}", "dev-gold.tsv", log=annif.work / "logs" / f"eval-{check}.log")
        found = {}
        for line in (annif.work / "logs" / f"eval-{check}.log").read_text().splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() in ("F1@5", "NDCG@10", "Precision@1", "Precision@5"):
                found[name.strip()] = float(value.strip())
        ours = annif_results[check]["metrics"]
        annif_results[check]["annif_eval_cross_check"] = {
            "annif_eval": found,
            "arttag_metrics": {"F1@5": ours["f1_at_5"], "NDCG@10": ours["ndcg_at_10"],
                               "Precision@1": ours["p_at_1"], "Precision@5": ours["p_at_5"]}}
        say("  annif eval " + ", ".join(f"{k} {v:.4f}" for k, v in found.items()) + " | arttag.quality.ranking "
            + ", ".join(f"{k} {v:.4f}" for k, v in annif_results[check]["annif_eval_cross_check"]["arttag_metrics"].items()))
    if "ensemble" in annif_results:
        annif_results["ensemble"]["train_s"] = sum(annif_results[s]["train_s"] for s in ENSEMBLE_SOURCES)
    timings["annif_total_s"] = time.perf_counter() - t0
    timings["annif_training_reused_s"] = sum(r["train_s"] for s, r in annif_results.items()
                                             if s != "ensemble" and (reused_from or not r["trained_now"]))
    if reused_from:
        timings["annif_reused_run_total_s"] = sum(r["index_s"] + 2 * r["load_s"] for r in annif_results.values())

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
            for f in Path(args.embedding_cache).glob("*.npz"):
                shutil.copy2(f, emb_cache / f.name)
        run = run_arttag(bundle_dir, dev, args.batch_size, vocab, emb_cache, args.throughput_sample)
        tagger = run.pop("tagger")
        manifest = tagger.manifest
        metrics = {n: score(r, gold, rare, unseen) for n, r in run["rankings"].items()}
        trained = manifest.get("training", {})
        train_s = sum(v for v in (trained.get("timings") or {}).values() if isinstance(v, (int, float))) or None
        arttag_result = {
            "bundle": str(bundle_dir),
            "arttag_code": str(Path(tagger.__class__.__module__ and sys.modules["arttag"].__file__).parent),
            "model_version": tagger.model_version,
            "created_at": manifest.get("created_at"),
            "encoder": manifest["encoder"]["name"],
            "trained_on": manifest.get("data", {}).get("path"),
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
    best_annif = max(annif_results, key=lambda s: annif_results[s]["metrics"]["f1_at_5"])
    fastest_annif = max(annif_results, key=lambda s: annif_results[s]["docs_per_s"] or 0.0)
    rows: dict[str, dict[str, Any]] = {}
    if arttag_result:
        rows["arttag"] = {**arttag_result["metrics"], "docs_per_s": arttag_result["docs_per_s"],
                          "train_s": arttag_result["train_s"]}
    for s, res in annif_results.items():
        rows[f"annif-{s}"] = {**res["metrics"], "docs_per_s": res["docs_per_s"], "train_s": res["train_s"]}
    total_s = time.perf_counter() - t_start
    print()
    print(f"dev split: {len(dev)} tagged artworks; best Annif system by F1@5: {best_annif}")
    if arttag_result:
        print_table(rows, f"annif-{best_annif}")
    else:
        print_table({"arttag": {}, **rows}, f"annif-{best_annif}")
    print("docs_per_s: suggestions per second on the dev split after start-up and model loading; "
          "train_s: training wall time (Annif ensemble: its three sources; arttag: from the bundle manifest, "
          "embeddings possibly from a cache)")
    extra = timings["annif_training_reused_s"] + timings.get("annif_reused_run_total_s", 0.0)
    print(f"whole benchmark: {total_s:.0f} s ({total_s / 60:.1f} min)" + (
        f"; with the reused Annif training{' and suggesting' if reused_from else ''} "
        f"({extra:.0f} s when it ran): {(total_s + extra) / 60:.1f} min" if extra else ""))

    env_prefix = f"PYTHONPATH={shlex.quote(os.environ['PYTHONPATH'])} " if os.environ.get("PYTHONPATH") else ""
    command = env_prefix + "nice -n 10 .venv/bin/python bench/quality_vs_annif.py" + (
        " " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])) if (argv or sys.argv[1:]) else "")
    best = annif_results[best_annif]
    out = {
        "headline": {
            "arttag_f1_at_5": arttag_result["metrics"]["f1_at_5"] if arttag_result else None,
            "annif_best_f1_at_5": best["metrics"]["f1_at_5"],
            "arttag_ndcg_at_10": arttag_result["metrics"]["ndcg_at_10"] if arttag_result else None,
            "annif_best_ndcg_at_10": best["metrics"]["ndcg_at_10"],
            "arttag_docs_per_s": arttag_result["docs_per_s"] if arttag_result else None,
            "annif_best_docs_per_s": best["docs_per_s"],
            "annif_best_system": best_annif,
            "annif_fastest_system": fastest_annif,
            "annif_fastest_docs_per_s": annif_results[fastest_annif]["docs_per_s"],
            "dev_artworks": len(dev),
            "arttag_model_version": arttag_result["model_version"] if arttag_result else None,
            "arttag_bundle_trained_on_this_catalogue": arttag_result["trained_on_this_catalogue"] if arttag_result else None,
            "view": args.view,
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
        "total_including_reused_training_s": total_s + timings["annif_training_reused_s"]
        + timings.get("annif_reused_run_total_s", 0.0),
        "timings": timings,
        "machine": {**mach, "load_average_at_end": list(os.getloadavg()),
                    "shared": "2 cores shared with other jobs; throughput and times are indicative"},
        "data": {
            "catalogue": str(args.catalogue), "sha256": catalogue_sha256,
            "rows_read": cat_report.rows_read, "bad_rows": len(cat_report.bad_rows),
            "tagged_artworks": len(tagged), "annif_train_artworks": len(train), "dev_artworks": len(dev),
            "split_rule": SPLIT_RULE,
            "annif_trains_on": "tagged artworks of the train and rerank splits (everything arttag's scorers and re-ranker saw)",
            "text": "arttag.catalogue.text.build_text for both systems",
            "vocabulary": {"source": "every tag of the catalogue, usage counted on the train split (as arttag train)", "tags": len(vocab), "rare_tags": len(rare),
                           "never_trained_tags": len(unseen)},
            "rare_definition": f"tags used by 1-{RARE_MAX_USES} tagged artworks of train + rerank (what Annif and arttag's refitted scorers learn from, as `arttag evaluate` counts)",
            "unseen_definition": "tags no tagged train or rerank artwork uses",
            "train_limit": args.train_limit, "dev_limit": args.dev_limit, "input_sha256": hashes,
        },
        "metric_code": "arttag.quality.ranking.ranking_metrics and subset_recall, on top-10 ranked tag lists",
        "arttag": arttag_result,
        "annif": {
            "version": annif_version, "venv": str(annif.venv), "pip_spec": args.annif_spec,
            "reused_from": reused_from,
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
