"""Chaos benchmark: real workers and a real broker under kills, a broker restart, poison and bundle swaps.

On its own broker (started here, restarted once, stopped at the end; never the shared one)
and fresh topics, ``--events`` valid artwork events from a catalogue are published with the
project's producer code, the malformed corpus of :mod:`chaos_corpus` interleaved with them,
while worker processes (``python -m arttag_stream``) consume them:

1. **kills**: one worker; ``kill -9`` at ``--kills`` random moments (seeded), each followed by
   a restart under the same data dir and worker identity (``ARTTAG_GROUP_INSTANCE_ID``);
2. **broker restart**: the broker is stopped and started again mid-stream;
3. **group**: a second worker joins the same consumer group; one of the two is killed and
   not restarted: the other must take its partitions over and finish the stream;
4. **drain**: until every valid event is answered, or nothing moves for ``--stall-s``, or
   ``--max-minutes`` is reached. A worker that exits on its own (not killed by us) is a crash:
   it is restarted with a growing back-off and counted (as caused by poison, or by the broker
   when it happened while the broker was down);
5. **bundle swaps** (separate phase, no broker): the bundle behind a pointer path is rewritten
   with :func:`arttag.model.bundle.write_bundle` in a loop (three versions, told apart by their
   embedding size), while another process loads the tagger through that path again and again
   and checks each load (manifest, arrays and encoder agree; ``suggest()`` works).

Events and answers are matched on the history topic ``tags.suggestions.v1`` by
(artwork id, revision); the poison by its position (topic, partition, offset) on the
dead-letter topic. Valid events beyond the catalogue's size are updates of the same artworks
with new revisions and changed text, so every event needs its own answer.

    .venv/bin/python bench/chaos.py [--events 20000] [--bundle DIR] [--encoder-kind onnx]
    .venv/bin/python bench/chaos.py --events 3000 --encoder-kind hashing --bundle /tmp/b \\
        --catalogue shared/arttag/data/tate_sample.jsonl.gz --out /tmp/chaos.json

Writes ``bench/results/chaos.json`` with machine details, settings, per-phase timings, the
poison table and a ``headline``; prints the headline against its targets.
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import hashlib
import itertools
import json
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the corpus and machine_info beside it

from chaos_corpus import POISON_PREFIX, PoisonCase, build_corpus  # noqa: E402
from harness import Broker, TopicReader, start_process  # noqa: E402
from machine_info import machine_details, portable_path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TATE = REPO.parent / "shared" / "data" / "tate" / "artworks.jsonl.gz"
SWAP_DIMS = (64, 96, 128)

log = logging.getLogger("bench.chaos")

HEADLINE_TARGETS: dict[str, tuple[str, float]] = {
    "events": (">=", 20000),
    "lost": ("==", 0),
    "duplicates_with_different_content": ("==", 0),
    "poison_cases": (">=", 30),
    "worker_crashes_from_poison": ("==", 0),
    "kills": (">=", 5),
    "recovery_s_p50": ("<=", 10),
    "bundle_swap_loads": (">=", 50),
    "bundle_swap_mixed_or_failed": ("==", 0),
}


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(q / 100 * (len(values) - 1)))))
    return values[k]


def r3(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


# -- the valid events ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidEvent:
    artwork_id: str
    revision: int
    kind: str  # "created" | "updated"
    value: bytes


def build_valid_events(catalogue: Path, n: int) -> tuple[list[ValidEvent], int]:
    """``n`` events: each catalogue artwork created (revision 1), then updated (revision 2, 3...)
    with its title and description changed, round after round, until there are ``n``."""
    from arttag.catalogue.records import iter_catalogue
    from arttag.events import ArtworkCreated, ArtworkUpdated, encode_event

    records, seen = [], set()
    for record in iter_catalogue(catalogue):
        if record.artwork_id not in seen:  # one artwork, one revision sequence
            seen.add(record.artwork_id)
            records.append(record)
        if len(records) >= n:
            break
    if not records:
        raise SystemExit(f"no usable rows in {catalogue}")
    ns = uuid.uuid5(uuid.NAMESPACE_URL, "urn:arttag:chaos")
    out: list[ValidEvent] = []
    for i in range(n):
        rnd, record = divmod(i, len(records))
        record = records[record]
        revision = rnd + 1
        meta = record.metadata
        if rnd:
            meta = meta.model_copy(update={
                "title": f"{meta.title} (revision {revision})",
                "description": f"{meta.description or ''} Catalogue entry revised, edition {revision}.".strip(),
            })
        cls = ArtworkCreated if rnd == 0 else ArtworkUpdated
        event = cls(event_id=str(uuid.uuid5(ns, f"{record.artwork_id}:{revision}")), source="arttag-chaos",
                    artwork_id=record.artwork_id, revision=revision, artwork=meta)
        out.append(ValidEvent(record.artwork_id, revision, "created" if rnd == 0 else "updated",
                              encode_event(event)))
    return out, len(records)


def interleave(n_valid: int, poison: list[PoisonCase], rng: random.Random) -> list[tuple[str, int]]:
    """The publishing order: ("valid", i) and ("poison", j), the poison spread over the first 90%."""
    order = list(range(len(poison)))
    rng.shuffle(order)
    spots = sorted(rng.randrange(max(1, int(n_valid * 0.9))) for _ in order)
    plan: list[tuple[str, int]] = []
    k = 0
    for i in range(n_valid):
        while k < len(order) and spots[k] <= i:
            plan.append(("poison", order[k]))
            k += 1
        plan.append(("valid", i))
    plan += [("poison", j) for j in order[k:]]
    return plan


# -- the broker ------------------------------------------------------------------------------------


# -- reading the outputs ---------------------------------------------------------------------------


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


class Watcher(TopicReader):
    """Reads the suggestions and dead-letter topics from the beginning, for the whole run."""

    poll_s = 0.2

    def __init__(self, kafka, topics, expected: dict[tuple[str, int], int]) -> None:
        # the broker restart is expected: no connection noise
        super().__init__(kafka, [topics.suggestions, topics.dead_letters], name="chaos-watcher", log_level=0)
        self.topics = topics
        self.expected = expected  # (artwork id, revision) -> index of the valid event
        self.partition_of: dict[tuple[str, int], int] = {}  # filled by the publisher's reports
        self.lock = threading.Lock()
        self.records = 0
        self.arrivals: list[float] = []  # every suggestion record, monotonic time
        self.part_arrivals: dict[int, list[float]] = defaultdict(list)  # by source partition
        self.first: dict[tuple[str, int], float] = {}
        self.poison_answered: set[str] = set()  # artwork ids of accepted poison cases
        self.answered_valid = 0
        self.answered_per_part: Counter[int] = Counter()
        self.contents: dict[tuple[str, int, str], list[tuple[str, str]]] = defaultdict(list)
        self.dead: dict[tuple[str, int, int], list[dict]] = defaultdict(list)
        self.dead_count = 0
        self.positions: dict[tuple[str, int], int] = {}

    def handle(self, msg, now: float) -> None:
        with self.lock:
            self.positions[(msg.topic(), msg.partition())] = msg.offset() + 1
        if msg.value() is None:
            return
        try:
            data = json.loads(msg.value())
        except ValueError:
            self.errors["unreadable output"] += 1
            return
        if msg.topic() == self.topics.suggestions:
            self._suggestion(data, msg.partition(), now)
        else:
            self._dead_letter(data)

    def _suggestion(self, data: dict, partition: int, now: float) -> None:
        key = (str(data.get("artwork_id")), int(data.get("revision", -1)))
        body = {"content_hash": data.get("content_hash"), "suggestions": data.get("suggestions")}
        with self.lock:
            self.records += 1
            self.arrivals.append(now)
            part = self.partition_of.get(key, partition)
            self.part_arrivals[part].append(now)
            self.contents[(*key, str(data.get("model_version")))].append(
                (_digest(body), _digest(_rounded(body))))
            if key not in self.first:
                self.first[key] = now
                if key[0].startswith(POISON_PREFIX):
                    self.poison_answered.add(key[0])
                if key in self.expected:
                    self.answered_valid += 1
                    self.answered_per_part[part] += 1

    def _dead_letter(self, data: dict) -> None:
        where = (str(data.get("topic")), int(data.get("partition", -1)), int(data.get("offset", -1)))
        with self.lock:
            self.dead_count += 1
            self.dead[where].append({"error_type": data.get("error_type"),
                                     "error": str(data.get("error", ""))[:300]})

    def caught_up(self, ends: dict[tuple[str, int], int]) -> bool:
        with self.lock:
            return all(self.positions.get(tp, 0) >= end for tp, end in ends.items() if end > 0)

    def first_after(self, t: float, partition: int | None = None) -> float | None:
        with self.lock:
            times = self.arrivals if partition is None else self.part_arrivals.get(partition, [])
            i = bisect.bisect_right(times, t)
            return times[i] if i < len(times) else None


def high_watermarks(kafka, topic_names: list[str]) -> dict[tuple[str, int], int]:
    from arttag.kafka.clients import consumer, partitions
    from confluent_kafka import TopicPartition

    c = consumer(kafka)
    try:
        return {(t, p): c.get_watermark_offsets(TopicPartition(t, p), timeout=30)[1]
                for t in topic_names for p in partitions(c, t)}
    finally:
        c.close()


# -- publishing ------------------------------------------------------------------------------------


class Publisher(threading.Thread):
    """Publishes the plan with the project's producer; keeps at most ``max_backlog`` valid events
    unanswered (so kills and the broker restart fall mid-stream), unless ``flood`` is set."""

    def __init__(self, kafka, topics, plan, valid: list[ValidEvent], poison: list[PoisonCase],
                 watcher: Watcher, max_backlog: int) -> None:
        super().__init__(daemon=True, name="chaos-publisher")
        self.kafka, self.topics, self.plan, self.valid, self.poison = kafka, topics, plan, valid, poison
        self.watcher, self.max_backlog = watcher, max_backlog
        self.flood = threading.Event()
        self.stop_flag = threading.Event()
        self.finished = threading.Event()
        self.sent_valid = self.sent_poison = 0
        self.delivered_valid = 0
        self.delivered_per_part: Counter[int] = Counter()
        self.poison_where: dict[str, tuple[str, int, int]] = {}
        self.errors: list[str] = []

    def run(self) -> None:
        from arttag.kafka import make_producer

        # Up to 1 MiB records (the poison corpus goes near it); retry through the broker restart.
        p = make_producer(self.kafka, **{"linger.ms": 20, "message.max.bytes": 1_048_576,
                                    "message.timeout.ms": 900_000, "log_level": 0})
        try:
            for what, i in self.plan:
                while (not self.flood.is_set() and not self.stop_flag.is_set()
                       and self.sent_valid - self.watcher.answered_valid > self.max_backlog):
                    p.poll(0.1)
                if self.stop_flag.is_set():
                    break
                if what == "valid":
                    ev = self.valid[i]
                    topic = self.topics.created if ev.kind == "created" else self.topics.updated
                    self._produce(p, topic, ev.artwork_id.encode(), ev.value, self._on_valid(ev))
                    self.sent_valid += 1
                else:
                    case = self.poison[i]
                    topic = self.topics.created if case.kind == "created" else self.topics.updated
                    self._produce(p, topic, case.key, case.value, self._on_poison(case))
                    self.sent_poison += 1
            while p.flush(1.0) and not self.stop_flag.is_set():
                pass
        finally:
            self.finished.set()

    @staticmethod
    def _produce(p, topic, key, value, callback) -> None:
        while True:
            try:
                p.produce(topic, key=key, value=value, on_delivery=callback)
                break
            except BufferError:  # local queue full (the broker is down): let deliveries drain
                p.poll(0.2)
        p.poll(0)

    def _on_valid(self, ev: ValidEvent):
        def done(err, msg) -> None:
            if err is not None:
                self.errors.append(f"{ev.artwork_id}:{ev.revision}: {err}")
                return
            with self.watcher.lock:
                self.watcher.partition_of[(ev.artwork_id, ev.revision)] = msg.partition()
            self.delivered_valid += 1
            self.delivered_per_part[msg.partition()] += 1
        return done

    def _on_poison(self, case: PoisonCase):
        def done(err, msg) -> None:
            if err is not None:
                self.errors.append(f"poison {case.name}: {err}")
                return
            self.poison_where[case.name] = (msg.topic(), msg.partition(), msg.offset())
        return done


# -- worker processes ------------------------------------------------------------------------------


@dataclass
class Worker:
    """One worker identity: its process (restarted in place), data dir and log."""

    name: str
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen | None = None
    killed_by_us: bool = False
    started_at: float = 0.0
    starts: int = 0
    consecutive_crashes: int = 0
    restart_at: float | None = None
    _log_pos: int = 0
    _published: int = 0
    _start_pos: int = 0
    _runs: list[tuple[int, float]] = field(default_factory=list)
    """Per start: where its log begins and the wall-clock time it was started (the log's clock)."""

    def start(self) -> None:
        with open(self.log_path, "ab") as fh:
            fh.write(f"\n===== chaos: start {self.starts + 1} of {self.name} =====\n".encode())
            self._start_pos = fh.tell()
        started_wall = time.time()
        self.proc = start_process("arttag_stream", self.env, self.log_path, append=True)
        self.killed_by_us = False
        self.started_at = time.monotonic()
        self.starts += 1
        self.restart_at = None
        self._runs.append((self._start_pos, started_wall))

    def ready_s(self, start: int) -> float | None:
        """Seconds from start number ``start`` (1 is the first) to its "Worker ready" line (faust
        logs it once the group assigned the partitions and fetching resumed); ``None`` if it never
        logged one."""
        begin, started_wall = self._runs[start - 1]
        end = self._runs[start][0] if start < len(self._runs) else None
        with open(self.log_path, "rb") as fh:
            fh.seek(begin)
            text = fh.read(None if end is None else end - begin).decode(errors="replace")
        ready = first_ready_wall_time(text)
        return None if ready is None else ready - started_wall

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        assert self.proc is not None
        self.killed_by_us = True
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> int | None:
        from arttag_stream.demo import stop_worker

        if self.proc is None or self.proc.poll() is not None:
            return None
        self.killed_by_us = True
        return stop_worker(self.proc, timeout_s=60)

    def crashed(self) -> int | None:
        """The exit status when the process ended without us killing or stopping it."""
        if self.proc is None or self.killed_by_us or self.restart_at is not None:
            return None
        return self.proc.poll()

    def published(self) -> int:
        """Suggestions this worker identity logged as published (all its runs)."""
        with open(self.log_path, "rb") as fh:
            fh.seek(self._log_pos)
            chunk = fh.read()
        cut = chunk.rfind(b"\n") + 1
        self._published += chunk[:cut].count(b": published ")
        self._log_pos += cut
        return self._published

    def this_run_log(self) -> str:
        """The log of the current (or last) process of this identity."""
        with open(self.log_path, "rb") as fh:
            fh.seek(self._start_pos)
            return fh.read().decode(errors="replace")

    def log_tail(self, lines: int = 12) -> list[str]:
        text = self.this_run_log()[-20000:].splitlines()
        keep = [ln for ln in text if "CRITICAL" in ln or "Error" in ln or "error" in ln]
        return (keep or text)[-lines:]


READY_LINE = "Worker ready"


def first_ready_wall_time(log_text: str) -> float | None:
    """The time of the first "Worker ready" line of a worker's log (faust's format:
    ``[2026-12-02 01:48:46,445] [pid] [INFO] [^---Recovery]: Worker ready``, local time)."""
    for line in log_text.splitlines():
        if READY_LINE in line and line.startswith("["):
            try:
                stamp = datetime.strptime(line[1:line.index("]")], "%Y-%m-%d %H:%M:%S,%f")
            except ValueError:
                continue
            return stamp.timestamp()
    return None


# What a worker's log shows when a message, not the broker, made it exit.
POISON_SIGNS = ("unexpected error handling a batch", "MessageSizeTooLarge", "RecordTooLarge",
                "RecursionError", "Traceback")


def crash_cause(worker: Worker, broker_was_down: bool) -> str:
    """The broker's, for an exit while the broker was (just) down with no sign of a bad message
    in the log; otherwise poison's (the benchmark's only other source of trouble)."""
    if broker_was_down and not any(sign in worker.this_run_log() for sign in POISON_SIGNS):
        return "broker"
    return "poison"


def worker_env(args, broker: Broker, kafka, group: str, name: str, data_dir: Path) -> dict[str, str]:
    pythonpath = os.pathsep.join([str(REPO / "shared"), str(REPO / "services"),
                                  os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env = {
        **os.environ,
        "PYTHONPATH": pythonpath,
        "ARTTAG_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap,
        "ARTTAG_KAFKA__TOPIC_PREFIX": kafka.topic_prefix,
        "ARTTAG_BUNDLE_DIR": str(args.bundle),
        "ARTTAG_ENCODER_KIND": args.encoder_kind,
        "ARTTAG_CONSUMER_GROUP": group,
        "ARTTAG_METRICS_PORT": "0",
        "ARTTAG_DATA_DIR": str(data_dir),
        "ARTTAG_LOG_LEVEL": "INFO",
        # Static membership where the worker supports it: a restart under the same identity
        # gets its partitions back at once. Settings ignore unknown ARTTAG_ variables.
        "ARTTAG_GROUP_INSTANCE_ID": f"chaos-{name}",
    }
    if args.session_timeout_s:
        env["ARTTAG_SESSION_TIMEOUT_S"] = str(args.session_timeout_s)
        env["ARTTAG_HEARTBEAT_INTERVAL_S"] = str(max(0.5, min(3.0, args.session_timeout_s / 4)))
    return env


# -- bundle swaps --------------------------------------------------------------------------------


def _array_dims(tagger) -> set[int]:
    """Widths of the embedding arrays the tagger's scorers loaded."""
    import numpy as np

    dims = set()
    for scorer in tagger.ensemble.scorers:
        for name in ("matrix", "tag_matrix", "embeddings"):
            value = getattr(scorer, name, None)
            if isinstance(value, np.ndarray) and value.ndim == 2:
                dims.add(int(value.shape[1]))
    return dims


def swap_loader(pointer: Path, expect: dict[str, int], min_loads: int, min_s: float, max_s: float) -> dict:
    """Load the tagger through ``pointer`` until ``min_loads`` and ``min_s`` (at most ``max_s``);
    each load must be one version throughout: its manifest's version and embedding size, the
    arrays its scorers loaded and its encoder agree, and ``suggest()`` answers."""
    from arttag.events import ArtworkMetadata
    from arttag.model.bundle import open_tagger

    probe = ArtworkMetadata(title="Harbour at night with fishing boats", artists=["Turner, Joseph Mallord William"],
                            medium="Oil paint on canvas")
    loads = ok = mixed = failed = 0
    errors: Counter[str] = Counter()
    versions: Counter[str] = Counter()
    started = time.monotonic()
    while True:
        elapsed = time.monotonic() - started
        if (loads >= min_loads and elapsed >= min_s) or elapsed >= max_s:
            break
        loads += 1
        try:
            tagger = open_tagger(pointer)
            version = tagger.model_version
            dim = int(tagger.manifest["encoder"]["dim"])
            problems = []
            if expect.get(version) != dim:
                problems.append(f"manifest {version} with embedding size {dim}")
            if _array_dims(tagger) != {dim}:
                problems.append(f"arrays of widths {sorted(_array_dims(tagger))} under a manifest of {dim}")
            if tagger.encoder is None or tagger.encoder.dim != dim:
                problems.append("encoder of another size")
        except Exception as exc:  # noqa: BLE001 - every failure is a result here
            failed += 1
            errors[f"{type(exc).__name__}: {str(exc)[:160]}"] += 1
            continue
        try:
            answers = tagger.suggest([probe])
            if len(answers) != 1 or not answers[0]:
                problems.append("suggest() gave no answer")
        except Exception as exc:  # noqa: BLE001 - a mixed load usually fails here
            problems.append(f"suggest() raised {type(exc).__name__}: {str(exc)[:120]}")
            if len(problems) == 1:  # nothing else wrong: a failure, not a mix
                failed += 1
                errors[problems[0]] += 1
                continue
        if problems:
            mixed += 1
            errors["mixed: " + "; ".join(problems)] += 1
        else:
            ok += 1
            versions[version] += 1
    return {"loads": loads, "consistent": ok, "mixed": mixed, "failed": failed,
            "seconds": round(time.monotonic() - started, 1), "versions_seen": dict(versions),
            "errors": dict(errors.most_common(10))}


def prepare_swap_variants(root: Path) -> list[dict]:
    """Three small bundles (hashing encoders of 64, 96 and 128 dims; knn and semantic scorers)
    trained on the first 600 rows of the bundled sample: quick to write, easy to tell apart."""
    from arttag.encoders import HashingEncoder
    from arttag.model.bundle import open_tagger
    from arttag.model.training import train_bundle
    from arttag_stream.demo import sample_path

    root.mkdir(parents=True, exist_ok=True)
    subset = root / "swap-train.jsonl"
    with gzip.open(sample_path(), "rt") as fh:
        subset.write_text("".join(itertools.islice(fh, 600)))
    variants = []
    for dim in SWAP_DIMS:
        stage = root / "stage" / f"d{dim}"
        manifest = train_bundle(subset, stage, HashingEncoder(dim),
                                {"evaluate": False, "model_version": f"chaos-swap-d{dim}",
                                 "scorers": {"knn": {}, "semantic": {}}})
        tagger = open_tagger(stage)
        variants.append({"dim": dim, "version": manifest["model_version"], "ensemble": tagger.ensemble,
                         "encoder": tagger.encoder, "manifest": manifest})
    return variants


def swap_in(pointer: Path, variant: dict) -> None:
    """Publish ``variant`` at ``pointer`` the way ``arttag train --out`` does."""
    from arttag.model.bundle import write_bundle
    from arttag.model.training import TrainParams

    m = variant["manifest"]
    write_bundle(pointer, variant["ensemble"], variant["encoder"], TrainParams.model_validate(m["params"]),
                 m["data"], m["training"], m["metrics"])


def run_bundle_swaps(args, work: Path, rng: random.Random) -> dict:
    t0 = time.monotonic()
    variants = prepare_swap_variants(work / "bundles")
    prepared_s = time.monotonic() - t0
    pointer = work / "bundles" / "swap" / "current"
    swap_in(pointer, variants[0])
    expect = {v["version"]: v["dim"] for v in variants}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--swap-loader", str(pointer),
           "--swap-expect", json.dumps(expect), "--swap-loads", str(args.swap_loads),
           "--swap-seconds", str(args.swap_seconds)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO / "shared"), str(REPO / "services"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    loader = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    swaps, swap_errors = 0, Counter()
    started = time.monotonic()
    i = 1
    while loader.poll() is None and time.monotonic() - started < args.swap_seconds * 4 + 120:
        try:
            swap_in(pointer, variants[i % len(variants)])
            swaps += 1
        except Exception as exc:  # noqa: BLE001 - counted, the loop goes on
            swap_errors[f"{type(exc).__name__}: {str(exc)[:160]}"] += 1
        i += 1
        time.sleep(rng.uniform(0, 0.2))
    try:
        out, err = loader.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        loader.kill()
        out, err = loader.communicate()
    try:
        result = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        result = {"loads": 0, "consistent": 0, "mixed": 0, "failed": 0,
                  "errors": {"loader process failed": 1}, "stderr": err[-2000:]}
    result.update(swaps=swaps, swap_errors=dict(swap_errors), versions=expect,
                  prepare_s=round(prepared_s, 1), pointer_layout=_describe(pointer))
    return result


def _describe(pointer: Path) -> str:
    if pointer.is_symlink():
        return f"symlink -> {os.readlink(pointer)}"
    return "directory" if pointer.is_dir() else "missing"


# -- the run ---------------------------------------------------------------------------------------


@dataclass
class Run:
    args: argparse.Namespace
    broker: Broker
    watcher: Watcher
    publisher: Publisher
    workers: dict[str, Worker]
    n_valid: int
    t0: float = field(default_factory=time.monotonic)
    phase: str = "setup"
    phases: list[dict] = field(default_factory=list)
    kills: list[dict] = field(default_factory=list)
    crashes: list[dict] = field(default_factory=list)
    restarts: list[dict] = field(default_factory=list)  # crash restarts
    broker_restart: dict | None = None
    group: dict | None = None
    last_progress: float = field(default_factory=time.monotonic)
    last_counts: tuple[int, int] = (-1, -1)
    stalls: int = 0

    def now(self) -> float:
        return time.monotonic() - self.t0

    def enter(self, name: str) -> None:
        t = self.now()
        if self.phases:
            self.phases[-1]["duration_s"] = round(t - self.phases[-1]["started_s"], 1)
        self.phases.append({"name": name, "started_s": round(t, 1),
                            "answered_at_start": self.watcher.answered_valid})
        self.phase = name
        log.info("phase %s at %.0fs", name, t)

    def supervise(self) -> None:
        """Restart workers that exited on their own (with back-off) and note the crash."""
        for w in self.workers.values():
            rc = w.crashed()
            if rc is not None:
                t = time.monotonic()
                cause = crash_cause(w, self.broker.in_outage(t, self.args.broker_grace_s))
                w.consecutive_crashes = w.consecutive_crashes + 1 if t - w.started_at < 60 else 1
                delay = min(2.0 ** (w.consecutive_crashes - 1), 30.0)
                self.crashes.append({"at_s": round(self.now(), 1), "worker": w.name, "exit_status": rc,
                                     "cause": cause, "alive_s": round(t - w.started_at, 1),
                                     "log_tail": w.log_tail()})
                log.warning("worker %s exited with %s (%s); restarting in %.0fs", w.name, rc, cause, delay)
                w.restart_at = t + delay
            if w.restart_at is not None and time.monotonic() >= w.restart_at:
                w.start()
                self.restarts.append({"worker": w.name, "t": w.started_at})

    def progressed(self) -> bool:
        counts = (self.watcher.records, self.watcher.dead_count)
        if counts != self.last_counts:
            self.last_counts = counts
            self.last_progress = time.monotonic()
            return True
        return False

    def stalled(self) -> bool:
        return time.monotonic() - self.last_progress > self.args.stall_s

    def status_line(self) -> str:
        ws = " ".join(f"{w.name}:{'up' if w.alive else 'down'}" for w in self.workers.values() if w.starts)
        from_poison = sum(c["cause"] == "poison" for c in self.crashes)
        return (f"[{self.now():6.0f}s] {self.phase:<15} published {self.publisher.sent_valid}/{self.n_valid}"
                f" (+{self.publisher.sent_poison} poison)  answered {self.watcher.answered_valid}"
                f"  records {self.watcher.records}  dead letters {self.watcher.dead_count}"
                f"  kills {len(self.kills)}  crashes {len(self.crashes)} ({from_poison} poison)  {ws}")


def run_stream(args, run: Run, rng: random.Random, deadline: float) -> str:
    """The scheduled chaos over the stream; returns why it ended."""
    w1, w2 = run.workers["w1"], run.workers["w2"]
    kill_at = sorted(rng.uniform(0.05, 0.55) for _ in range(args.kills))
    actions: list[tuple[str, float]] = [("kill", f) for f in kill_at]
    actions += [("broker_restart", rng.uniform(0.60, 0.66)), ("group_start", 0.70),
                ("group_kill", rng.uniform(0.76, 0.82))]
    waiting_recovery: dict | None = None  # the last restart, until its next suggestion
    next_print = 0.0
    fire_at: float | None = None
    fire_on_stall = False
    run.enter("kills")
    w1.start()
    run.publisher.start()
    while True:
        now = time.monotonic()
        run.supervise()
        run.progressed()
        if now >= next_print:
            print(run.status_line(), flush=True)
            next_print = now + args.progress_s
        if now > deadline:
            return "time limit (--max-minutes)"
        stalled = run.stalled()
        if stalled:
            run.stalls += 1
            run.last_progress = now  # one stall at a time
            run.publisher.flood.set()  # stuck: publish the rest, it counts as lost if never answered
            log.warning("no progress for %.0fs", args.stall_s)
        if waiting_recovery is not None:
            if run.watcher.first_after(waiting_recovery["t"]) is not None or stalled:
                waiting_recovery = None
            else:
                time.sleep(0.1)
                continue
        frac = run.watcher.answered_valid / run.n_valid
        if actions:
            name, threshold = actions[0]
            ready = frac >= threshold or stalled
            if name == "group_kill" and ready and not stalled:
                # Both members must be consuming (the join's rebalance done) before one is killed:
                # the newcomer has published, and the first one again after that.
                g = run.group
                if g.get("w1_at_w2_first") is None and w2.published() > g["w2_published_at_start"]:
                    g["w1_at_w2_first"] = w1.published()
                    g["w2_first_published_s"] = round(time.monotonic() - g["t_w2_start"], 1)
                ready = g.get("w1_at_w2_first") is not None and w1.published() > g["w1_at_w2_first"]
            if name == "kill" and not (w1.alive or w2.alive):
                ready = False  # down (crash back-off): a kill -9 needs a running process
            if ready and fire_at is None:
                fire_at = now + rng.uniform(0, args.jitter_s)  # a random moment, not a round number
                fire_on_stall = stalled
            if fire_at is not None and now >= fire_at:
                if name == "kill" and not (w1.alive or w2.alive):
                    fire_at = None  # it went down meanwhile: wait until it is back
                    continue
                fire_at = None
                actions.pop(0)
                waiting_recovery = do_action(name, args, run, rng, fire_on_stall)
                continue
        elif run.publisher.finished.is_set():
            if run.watcher.answered_valid >= run.publisher.delivered_valid and (
                    poison_settled(run) or now - run.last_progress > 20):
                return "complete"
            if stalled:
                return "stalled (no progress for --stall-s)"
        time.sleep(0.1)


def poison_settled(run: Run) -> bool:
    """Every poison record answered somehow (dead letter or suggestion)."""
    answered = 0
    with run.watcher.lock:
        for case in run.publisher.poison:
            where = run.publisher.poison_where.get(case.name)
            if (where and where in run.watcher.dead) or case.artwork_id in run.watcher.poison_answered:
                answered += 1
    return answered >= len(run.publisher.poison)


def do_action(name: str, args, run: Run, rng: random.Random, stalled: bool) -> dict | None:
    w1, w2 = run.workers["w1"], run.workers["w2"]
    answered = run.watcher.answered_valid
    if name == "kill":
        victim = w1 if w1.alive or not w2.alive else w2
        t_kill = time.monotonic()
        was_alive = victim.alive
        if was_alive:
            victim.kill9()
        time.sleep(rng.uniform(0, args.restart_delay_s))
        victim.start()
        kill = {"n": len(run.kills) + 1, "worker": victim.name, "at_s": round(t_kill - run.t0, 1),
                "answered_at_kill": answered, "was_alive": was_alive, "fired_on_stall": stalled,
                "t_kill": t_kill, "t_restart": victim.started_at, "kind": "restart", "start": victim.starts}
        run.kills.append(kill)
        log.info("kill -9 #%d of %s at %d answered; restarted", kill["n"], victim.name, answered)
        return {"t": victim.started_at}
    if name == "broker_restart":
        run.enter("broker_restart")
        down = rng.uniform(2, 6)
        info = run.broker.restart(down)  # blocks; crashes meanwhile are noticed just after
        run.broker_restart = {"answered_at_stop": answered, "at_s": round(info["t_stop"] - run.t0, 1),
                              "stop_s": round(info["stop_s"], 1), "down_s": round(info["down_s"], 1),
                              "t_ready": info["t_ready"], "t_stop": info["t_stop"], "fired_on_stall": stalled}
        log.info("broker restarted (down %.1fs)", info["down_s"])
        return {"t": info["t_ready"]}
    if name == "group_start":
        run.enter("group")
        w2.start()
        run.group = {"w2_published_at_start": w2.published(), "t_w2_start": w2.started_at}
        return None
    if name == "group_kill":
        assert run.group is not None
        alive = [w for w in (w1, w2) if w.alive]
        victim = rng.choice(alive) if alive else w1
        survivor = w2 if victim is w1 else w1
        with run.watcher.lock:
            pending = sorted(p for p, n in run.publisher.delivered_per_part.items()
                             if n > run.watcher.answered_per_part.get(p, 0))
        t_kill = time.monotonic()
        if victim.alive:
            victim.kill9()
        run.kills.append({"n": len(run.kills) + 1, "worker": victim.name, "at_s": round(t_kill - run.t0, 1),
                          "answered_at_kill": answered, "was_alive": True, "fired_on_stall": stalled,
                          "t_kill": t_kill, "t_restart": None, "kind": "group takeover"})
        run.group.update(victim=victim.name, survivor=survivor.name, t_kill=t_kill,
                         pending_partitions=pending, both_consuming=not stalled,
                         w1_published=w1.published(), w2_published=w2.published())
        log.info("group: kill -9 of %s; %s must take over partitions %s", victim.name, survivor.name, pending)
        run.enter("drain")
        return None
    raise ValueError(name)


# -- results ---------------------------------------------------------------------------------------


def summarise(args, run: Run, valid: list[ValidEvent], poison: list[PoisonCase], stop_reason: str) -> dict:
    w = run.watcher
    expected = {(e.artwork_id, e.revision) for e in valid[:run.publisher.sent_valid]}
    lost = sorted(k for k in expected if k not in w.first)
    same = diff = diff_exact_only = same_records = 0
    diff_examples = []
    for key, items in w.contents.items():
        if len(items) < 2:
            continue
        exact = {a for a, _ in items}
        rounded = {b for _, b in items}
        if len(rounded) > 1:
            diff += 1
            diff_examples.append(list(key))
        elif len(exact) > 1:
            diff_exact_only += 1
        else:
            same += 1
            same_records += len(items) - 1
    # poison table
    table = {}
    for case in poison:
        where = run.publisher.poison_where.get(case.name)
        dls = w.dead.get(where, []) if where else []
        suggested = case.artwork_id in w.poison_answered
        outcome = "dead_lettered" if dls else "suggested" if suggested else "nothing"
        ok = outcome == "dead_lettered" or (outcome == "suggested" and case.expect == "either")
        table[case.name] = {
            "description": case.description, "bytes": case.size, "topic": where[0] if where else None,
            "expect": case.expect, "dead_lettered": bool(dls), "outcome": outcome, "as_expected": ok,
            "reason": dls[0]["error_type"] if dls else None,
            "error": dls[0]["error"][:200] if dls else None, "dead_letters": len(dls),
        }
    # recoveries: from each restart (after a kill -9, and the broker's) to the next suggestion;
    # a worker's split at its "Worker ready" line (start-up and group join, then the first batch)
    recoveries = []
    for k in run.kills:
        if k["kind"] != "restart":
            continue
        nxt = w.first_after(k["t_restart"])
        k["recovery_s"] = r3(nxt - k["t_restart"]) if nxt else None
        k["downtime_s"] = r3(nxt - k["t_kill"]) if nxt else None
        ready = run.workers[k["worker"]].ready_s(k.pop("start"))
        k["ready_s"] = r3(ready)
        k["ready_to_suggestion_s"] = r3(nxt - k["t_restart"] - ready) if nxt and ready is not None else None
        if nxt:
            recoveries.append(nxt - k["t_restart"])
    worker_recovery = worker_restart_recovery(run.kills)
    if run.broker_restart:
        nxt = w.first_after(run.broker_restart["t_ready"])
        run.broker_restart["recovery_s"] = r3(nxt - run.broker_restart["t_ready"]) if nxt else None
        run.broker_restart["downtime_s"] = r3(nxt - run.broker_restart["t_stop"]) if nxt else None
        if nxt:
            recoveries.append(nxt - run.broker_restart["t_ready"])
    if run.group and "t_kill" in run.group:
        per_part = {}
        for p in run.group["pending_partitions"]:
            nxt = w.first_after(run.group["t_kill"], partition=p)
            per_part[str(p)] = r3(nxt - run.group["t_kill"]) if nxt else None
        run.group["takeover_s_per_partition"] = per_part
        times = list(per_part.values())
        run.group["takeover_s"] = max(times) if times and None not in times else None
    crash_restarts = []
    for r in run.restarts:
        nxt = w.first_after(r["t"])
        crash_restarts.append(r3(nxt - r["t"]) if nxt else None)
    for item in run.kills:
        item.pop("t_kill", None)
        item.pop("t_restart", None)
    if run.broker_restart:
        run.broker_restart.pop("t_ready", None)
        run.broker_restart.pop("t_stop", None)
    if run.group:
        for key in ("t_kill", "t_w2_start"):
            run.group.pop(key, None)
    from_poison = [c for c in run.crashes if c["cause"] == "poison"]
    headline = {
        "events": run.publisher.delivered_valid,
        "lost": len(lost),
        "duplicates_with_different_content": diff,
        "poison_cases": len(run.publisher.poison_where),
        "worker_crashes_from_poison": len(from_poison),
        "kills": len(run.kills),
        "recovery_s_p50": r3(pct(recoveries, 50)),
        "worker_restart_recovery_s_p50": worker_recovery["p50"],
    }
    return {
        "stop_reason": stop_reason,
        "events": {
            "valid_planned": len(valid), "valid_published": run.publisher.delivered_valid,
            "poison_published": len(run.publisher.poison_where),
            "answered": w.answered_valid, "lost": len(lost), "lost_sample": [list(k) for k in lost[:20]],
            "suggestion_records": w.records, "dead_letter_records": w.dead_count,
            "duplicates_same_content": same, "duplicate_records_same_content": same_records,
            "duplicates_with_different_content": diff,
            "duplicates_with_different_content_sample": diff_examples[:10],
            "duplicates_differing_only_below_1e-4": diff_exact_only,
            "publish_errors": run.publisher.errors[:20], "watcher_errors": dict(w.errors),
        },
        "kills": run.kills,
        "recovery_s": {"values": [r3(x) for x in recoveries], "p50": r3(pct(recoveries, 50)),
                       "max": r3(max(recoveries)) if recoveries else None,
                       "what": "from each restart (a worker after kill -9, the broker) to the next "
                               "suggestion on the history topic"},
        "worker_restart_recovery_s": worker_recovery,
        "broker_restart": run.broker_restart,
        "group": run.group,
        "crashes": run.crashes,
        "crash_restarts_to_next_suggestion_s": crash_restarts,
        "poison": table,
        "poison_as_expected": sum(v["as_expected"] for v in table.values()),
        "headline_part": headline,
    }


def worker_restart_recovery(kills: list[dict]) -> dict:
    """The worker restarts alone (``kind == "restart"``; the broker restart and the group takeover
    left out): restart to next suggestion, and where the log gave it, restart to "Worker ready"
    and from there to the suggestion."""
    restarts = [k for k in kills if k.get("kind") == "restart"]

    def summary(key: str) -> dict:
        values = [k[key] for k in restarts if k.get(key) is not None]
        return {"values": values, "p50": r3(pct(values, 50)), "max": max(values) if values else None}

    out = summary("recovery_s")
    out["what"] = "from each worker restart after kill -9 to the next suggestion (the broker restart excluded)"
    if any(k.get("ready_s") is not None for k in restarts):
        out["ready_s"] = summary("ready_s")
        out["ready_to_suggestion_s"] = summary("ready_to_suggestion_s")
    return out


def check(value, op: str, target: float) -> bool | None:
    if value is None:
        return None
    return {">=": value >= target, "<=": value <= target, "==": value == target}[op]


def print_table(headline: dict) -> None:
    print(f"\n{'headline':<36}{'value':>12}  {'target':<10}ok")
    for key, (op, target) in HEADLINE_TARGETS.items():
        value = headline.get(key)
        ok = check(value, op, target)
        print(f"{key:<36}{str(value):>12}  {op + ' ' + str(target):<10}"
              f"{'yes' if ok else 'n/a' if ok is None else 'NO'}")
    for key in [k for k in headline if k not in HEADLINE_TARGETS]:
        print(f"{key:<36}{str(headline[key]):>12}")


# -- main --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from arttag.settings import StreamSettings

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20000, help="valid artwork events (default 20000)")
    ap.add_argument("--catalogue", type=Path, default=TATE, help="catalogue export the events come from")
    ap.add_argument("--seed", type=int, default=0, help="seeds kill moments, poison order, delays")
    ap.add_argument("--kills", type=int, default=5, help="kill -9 + restart of the single worker")
    ap.add_argument("--bundle", type=Path, default=None, help="the workers' bundle (default: ARTTAG_BUNDLE_DIR)")
    ap.add_argument("--encoder-kind", choices=("onnx", "hashing"), default="onnx")
    ap.add_argument("--partitions", type=int, default=4, help="partitions of the bench topics")
    ap.add_argument("--session-timeout-s", type=float, default=None,
                    help="workers' ARTTAG_SESSION_TIMEOUT_S (default: the product default)")
    ap.add_argument("--max-backlog", type=int, default=1000, help="valid events published ahead of answers")
    ap.add_argument("--stall-s", type=float, default=120.0, help="no new output for this long: move on / end")
    ap.add_argument("--max-minutes", type=float, default=90.0, help="limit on the stream phases")
    ap.add_argument("--jitter-s", type=float, default=3.0, help="random delay before each scheduled fault")
    ap.add_argument("--restart-delay-s", type=float, default=1.0, help="killed worker restarts within this")
    ap.add_argument("--broker-grace-s", type=float, default=60.0,
                    help="worker exits up to this long after the broker is back count as the broker's")
    ap.add_argument("--swap-loads", type=int, default=50, help="at least this many loads through the pointer")
    ap.add_argument("--swap-seconds", type=float, default=30.0, help="and for at least this long")
    ap.add_argument("--skip-swaps", action="store_true", help="no bundle-swap phase")
    ap.add_argument("--kafka-port", type=int, default=19092, help="this benchmark's own broker (and port+1)")
    ap.add_argument("--kafka-run-dir", type=Path, default=Path(tempfile.gettempdir()) / "chaos-kafka")
    ap.add_argument("--keep-broker", action="store_true", help="leave the bench broker running at the end")
    ap.add_argument("--work-dir", type=Path, default=None, help="worker logs and data (default: a temp dir)")
    ap.add_argument("--progress-s", type=float, default=5.0)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "chaos.json")
    # the bundle-swap loader process (internal)
    ap.add_argument("--swap-loader", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--swap-expect", default="{}", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.bundle is None:
        args.bundle = StreamSettings().bundle_dir
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.swap_loader is not None:
        result = swap_loader(args.swap_loader, json.loads(args.swap_expect), args.swap_loads,
                             args.swap_seconds, args.swap_seconds * 4 + 60)
        print(json.dumps(result))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("arttag", "arttag_stream", "faust", "aiokafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not args.catalogue.exists():
        raise SystemExit(f"catalogue {args.catalogue} not found; pass --catalogue "
                         "(e.g. shared/arttag/data/tate_sample.jsonl.gz)")
    from arttag.kafka.admin import admin_client, create_topics
    from arttag.kafka.topics import StreamTopics
    from arttag.model.bundle import read_manifest
    from arttag.settings import KafkaSettings, StreamSettings

    manifest = read_manifest(args.bundle)
    rng = random.Random(args.seed)
    run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
    work = args.work_dir or Path(tempfile.mkdtemp(prefix=f"arttag-chaos-{run_id}-"))
    work.mkdir(parents=True, exist_ok=True)
    started_at = datetime.now(timezone.utc).isoformat()
    t_start = time.monotonic()
    defaults = StreamSettings()

    valid, rows = build_valid_events(args.catalogue, args.events)
    poison = build_corpus()
    plan = interleave(len(valid), poison, rng)
    log.info("%d valid events from %d artworks, %d poison cases; work dir %s", len(valid), rows,
             len(poison), work)

    broker = Broker(args.kafka_port, args.kafka_run_dir)
    log.info("starting the bench broker on %s (run dir %s)", broker.bootstrap, args.kafka_run_dir)
    broker.start()
    result: dict[str, Any] = {}
    run: Run | None = None
    swaps: dict = {"skipped": True}
    try:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap, topic_prefix=f"chaos-{run_id}.",
                              partitions=args.partitions)
        create_topics(kafka)
        topics = StreamTopics.for_prefix(kafka.topic_prefix)
        expected = {(e.artwork_id, e.revision): i for i, e in enumerate(valid)}
        watcher = Watcher(kafka, topics, expected)
        watcher.start()
        publisher = Publisher(kafka, topics, plan, valid, poison, watcher, args.max_backlog)
        group = f"chaos-{run_id}"
        workers = {}
        for name in ("w1", "w2"):
            data_dir = work / name / "data"
            data_dir.mkdir(parents=True, exist_ok=True)
            workers[name] = Worker(name, worker_env(args, broker, kafka, group, name, data_dir),
                                   work / f"{name}.log")
        run = Run(args, broker, watcher, publisher, workers, len(valid))
        deadline = time.monotonic() + args.max_minutes * 60
        stop_reason = run_stream(args, run, rng, deadline)
        print(run.status_line(), flush=True)
        run.enter("stop")
        publisher.stop_flag.set()
        exit_status = {w.name: w.stop() for w in workers.values()}
        publisher.join(30)
        ends = high_watermarks(kafka, [topics.suggestions, topics.dead_letters])
        sync_deadline = time.monotonic() + 120
        while not watcher.caught_up(ends) and time.monotonic() < sync_deadline:
            time.sleep(0.2)
        watcher.close()
        run.phases[-1]["duration_s"] = round(run.now() - run.phases[-1]["started_s"], 1)
        result = summarise(args, run, valid, poison, stop_reason)
        result["workers"] = {w.name: {"starts": w.starts, "exit_status_at_stop": exit_status[w.name],
                                      "published_logged": w.published(), "log": portable_path(w.log_path)}
                             for w in workers.values()}
        result["stalls"] = run.stalls
        admin = admin_client(kafka)
        names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(kafka.topic_prefix)]
        if names:
            for fut in admin.delete_topics(names, operation_timeout=30).values():
                try:
                    fut.result()
                except Exception as exc:  # noqa: BLE001 - cleanup only
                    log.warning("could not delete a bench topic: %s", exc)
        del admin  # its connections would complain once the broker stops
    finally:
        if run is not None:
            for w in run.workers.values():
                if w.alive:
                    w.stop()
        if not args.keep_broker:
            try:
                broker.stop()
            except Exception as exc:  # noqa: BLE001
                log.warning("could not stop the bench broker: %s", exc)
    if not args.skip_swaps:
        t = time.monotonic()
        print("bundle swaps: preparing three versions, then swapping while another process loads",
              flush=True)
        swaps = run_bundle_swaps(args, work, rng)
        swaps["duration_s"] = round(time.monotonic() - t, 1)
        run.phases.append({"name": "bundle_swaps", "started_s": round(t - run.t0, 1),
                           "duration_s": swaps["duration_s"]})
        print(f"bundle swaps: {swaps['swaps']} swaps, {swaps['loads']} loads, "
              f"{swaps['mixed']} mixed, {swaps['failed']} failed", flush=True)
    headline = result.pop("headline_part")
    headline["bundle_swap_loads"] = swaps.get("loads", 0)
    headline["bundle_swap_mixed_or_failed"] = swaps.get("mixed", 0) + swaps.get("failed", 0)
    out = {
        "machine": machine_details(kafka=os.environ.get("KAFKA_VERSION", "3.9.2"),
                                   note="2 cores shared with other processes; timings are noisy"),
        "started_at": started_at,
        "finished_at": datetime.now(timezone.utc).isoformat(),
        "duration_s": round(time.monotonic() - t_start, 1),
        "settings": {
            "events": args.events, "catalogue": portable_path(args.catalogue), "catalogue_artworks": rows,
            "seed": args.seed, "kills": args.kills, "bundle": portable_path(args.bundle),
            "bundle_training_artworks": (manifest.get("training") or {}).get("artworks"),
            "model_version": manifest.get("model_version"), "encoder_kind": args.encoder_kind,
            "partitions": args.partitions, "max_backlog": args.max_backlog, "stall_s": args.stall_s,
            "max_minutes": args.max_minutes, "kafka_port": args.kafka_port,
            "session_timeout_s": args.session_timeout_s or defaults.session_timeout_s,
            "batch_max_events": defaults.batch_max_events, "commit_interval_s": defaults.commit_interval_s,
            "group_instance_ids": ["chaos-w1", "chaos-w2"], "work_dir": portable_path(work),
            "poison_corpus": len(poison),
        },
        "phases": run.phases if run else [],
        **result,
        "bundle_swaps": swaps,
        "headline": headline,
        "targets": {k: f"{op} {t}" for k, (op, t) in HEADLINE_TARGETS.items()},
        "targets_met": {k: check(headline.get(k), op, t) for k, (op, t) in HEADLINE_TARGETS.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(f"\nstopped: {result.get('stop_reason')}; poison as expected "
          f"{result.get('poison_as_expected')}/{len(poison)}; crashes {len(run.crashes) if run else 0}")
    for c in (run.crashes if run else [])[:5]:
        print(f"  crash of {c['worker']} at {c['at_s']}s, status {c['exit_status']} ({c['cause']}): "
              f"{c['log_tail'][-1] if c['log_tail'] else ''}"[:240])
    print_table(headline)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
