"""A measured backfill: a whole catalogue through ``arttag backfill`` and real stream workers, timed end to end.

1. fresh topics (their own prefix, ``--partitions`` each) on the broker that
   ``ARTTAG_KAFKA__BOOTSTRAP_SERVERS`` names;
2. ``--workers`` stream workers (``python -m arttag_stream``, as in production, one consumer
   group, default batch settings) start on the bundle and report ready; their embedding cache
   folder (``ARTTAG_ENCODER__CACHE_DIR``) is an empty temporary folder (``--cache cold``), a
   folder holding the encoder's cache file (``--cache warm --cache-dir DIR``), or the cache is
   off altogether (``--cache off``: every artwork runs the model);
3. the clock starts; ``arttag backfill CATALOGUE`` (the CLI, a subprocess) publishes every
   row as ``ArtworkCreated``;
4. the clock stops when every published artwork has its suggestion (or dead letter) on the
   output topics, read by a consumer here: start to last suggestion published. Progress is
   printed every ``--progress-s`` seconds;
5. the workers get SIGTERM (they write their embedding cache back, which ``--keep-cache``
   keeps for a warm run), the topics are deleted.

Nothing is extrapolated: a run stopped by ``--deadline`` records ``completed: false`` with
the artworks done and the time taken. The same script measures scale-out: ``--workers 2
--limit N`` against ``--workers 1 --limit N``.

    ARTTAG_KAFKA__BOOTSTRAP_SERVERS=127.0.0.1:19492 nice -n 5 .venv/bin/python bench/backfill.py \\
        --bundle BUNDLE --cache cold --keep-cache /tmp/warm --out bench/results/backfill_cold.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from harness import wait_for_line
from machine_info import (
    bundle_details,
    cpu_during_run,
    machine_details,
    portable_command,
    portable_path,
)

REPO = Path(__file__).resolve().parents[1]
TATE = REPO.parent / "shared" / "data" / "tate" / "artworks.jsonl.gz"

log = logging.getLogger("bench.backfill")


class OutputWatcher(threading.Thread):
    """Reads the suggestions and dead-letter topics from the beginning: which artworks are done, when."""

    def __init__(self, kafka, topics) -> None:
        super().__init__(daemon=True)
        from arttag.kafka.admin import await_visible
        from arttag.kafka.clients import consumer
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        self.c = consumer(kafka)
        watched = [topics.suggestions, topics.dead_letters, topics.created]
        # A topic created a moment ago may not show all its partitions yet: one missed here
        # would never be read.
        if not await_visible(self.c, watched, kafka.partitions, timeout_s=60):
            raise SystemExit(f"{', '.join(watched)}: not all {kafka.partitions} partitions visible after 60 s")
        assignment = [TopicPartition(topic, p, OFFSET_BEGINNING)
                      for topic in watched for p in range(kafka.partitions)]
        self.c.assign(assignment)
        self.suggestions_topic = topics.suggestions
        self.input_topic = topics.created
        self.first_input_at = 0.0            # wall clock of the first artwork event seen
        self.done: set[str] = set()          # artwork ids with a suggestion or a dead letter
        self.suggestion_ids: dict[str, int] = {}  # suggestion id -> times seen
        self.dead_letters = 0
        self.last_at = 0.0                   # wall clock of the newest new artwork done
        self.first_at = 0.0
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()

    def run(self) -> None:
        while not self.stop_flag.is_set():
            for msg in self.c.consume(1000, 0.1):
                if msg.error() or msg.value() is None:
                    continue
                now = time.time()
                if msg.topic() == self.input_topic:
                    self.first_input_at = self.first_input_at or now
                    continue
                data = json.loads(msg.value())
                with self.lock:
                    if msg.topic() == self.suggestions_topic:
                        sid = data["suggestion_id"]
                        self.suggestion_ids[sid] = self.suggestion_ids.get(sid, 0) + 1
                        aid = data["artwork_id"]
                    else:
                        self.dead_letters += 1
                        aid = data.get("artwork_id") or f"dead-letter-{msg.partition()}-{msg.offset()}"
                    if aid not in self.done:
                        self.done.add(aid)
                        self.last_at = now
                        self.first_at = self.first_at or now
        self.c.close()

    def count(self) -> int:
        with self.lock:
            return len(self.done)


def start_worker(kafka, bundle: Path, group: str, log_path: Path, cache: str, cache_dir: Path | None,
                 instance: int) -> subprocess.Popen:
    """``python -m arttag_stream`` with the production defaults, except the topics, the group and
    the embedding cache; hot reload off (the bundle does not change during a run)."""
    env = {
        **os.environ,
        "ARTTAG_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "ARTTAG_KAFKA__TOPIC_PREFIX": kafka.topic_prefix,
        "ARTTAG_BUNDLE_DIR": str(bundle),
        "ARTTAG_ENCODER_KIND": "onnx",
        "ARTTAG_CONSUMER_GROUP": group,
        "ARTTAG_METRICS_PORT": "0",
        "ARTTAG_DATA_DIR": str(log_path.parent / f"data-{instance}"),
        "ARTTAG_BUNDLE_RELOAD_INTERVAL_S": "0",
    }
    if cache == "off":
        env["ARTTAG_ENCODER__CACHE_SIZE"] = "0"
        env.pop("ARTTAG_ENCODER__CACHE_DIR", None)
    else:
        env["ARTTAG_ENCODER__CACHE_DIR"] = str(cache_dir)
    fh = open(log_path, "wb")  # noqa: SIM115 - the worker writes to it until it exits
    return subprocess.Popen([sys.executable, "-m", "arttag_stream"], env=env, stdout=fh, stderr=subprocess.STDOUT)


def wait_ready(proc: subprocess.Popen, log_path: Path, timeout_s: float = 300.0) -> float:
    """Seconds until the worker reports ready; a worker that exits or stays silent ends the run."""
    try:
        return wait_for_line(proc, log_path, "Worker ready", timeout_s)
    except RuntimeError as exc:
        raise SystemExit(f"worker not ready: {exc}") from exc


def wait_assigned(kafka, group: str, members: int, timeout_s: float = 180.0) -> None:
    """Wait until the group has ``members`` members, each holding partitions (the rebalance settled)."""
    from arttag.kafka.admin import admin_client

    admin = admin_client(kafka)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            desc = admin.describe_consumer_groups([group])[group].result(10)
            held = [len(m.assignment.topic_partitions) for m in desc.members]
            if len(held) >= members and all(held):
                log.info("group %s: %d members holding %s partitions", group, len(held), held)
                return
        except Exception as exc:  # noqa: BLE001 - the group may not exist yet
            log.debug("group not described yet: %s", exc)
        time.sleep(1)
    log.warning("the group did not show %d members with partitions in %.0f s; measuring anyway", members, timeout_s)


def worker_batches(log_path: Path) -> dict:
    """From a worker's log: batches, artworks, tagger seconds and batch seconds."""
    n = artworks = 0
    tagger = total = 0.0
    shares = []
    for line in log_path.read_text(errors="replace").splitlines():
        m = re.search(r"batch of (\d+): .* tagger ([0-9.]+)s, (?:.*, )?batch ([0-9.]+)s", line)
        if m:
            n += 1
            artworks += int(m.group(1))
            tagger += float(m.group(2))
            total += float(m.group(3))
            if float(m.group(3)) > 0:
                shares.append(float(m.group(2)) / float(m.group(3)))
    return {"batches": n, "artworks": artworks, "tagger_s": round(tagger, 1), "batch_s": round(total, 1),
            "tagger_share_of_batch_time_median": round(statistics.median(shares), 4) if shares else None}


def delete_topics(kafka) -> None:
    """The run's topics hold the whole catalogue: delete them."""
    from arttag.kafka.admin import admin_client

    admin = admin_client(kafka)
    names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(kafka.topic_prefix)]
    if names:
        admin.delete_topics(names, operation_timeout=30)


def cache_entries(cache_dir: Path | None, encoder_name: str | None) -> int:
    if cache_dir is None or not encoder_name:
        return 0
    import numpy as np
    from arttag.encoders.cache import cache_file

    path = cache_file(cache_dir, encoder_name)
    if not path.exists():
        return 0
    with np.load(path, allow_pickle=False) as data:
        return len(data["keys"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=None, help="model bundle (default: ARTTAG_BUNDLE_DIR)")
    ap.add_argument("--catalogue", type=Path, default=TATE)
    ap.add_argument("--cache", choices=("cold", "warm", "off"), default="cold")
    ap.add_argument("--cache-dir", type=Path, default=None,
                    help="--cache warm: the folder holding the encoder's cache file")
    ap.add_argument("--keep-cache", type=Path, default=None,
                    help="copy the cache folder the workers wrote at shutdown here (for a warm run)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--partitions", type=int, default=None, help="default: ARTTAG_KAFKA__PARTITIONS")
    ap.add_argument("--limit", type=int, default=None, help="only the first N rows (scale-out runs)")
    ap.add_argument("--deadline", default=None,
                    help="UTC time (ISO, e.g. 2026-12-01T03:25) at which an unfinished run stops and "
                         "records what it completed")
    ap.add_argument("--stall-s", type=float, default=300.0,
                    help="stop when nothing new was done for this long after publishing finished")
    ap.add_argument("--progress-s", type=float, default=30.0)
    ap.add_argument("--label", default=None, help="a name for this run in the results")
    ap.add_argument("--note", default=None, help="what else ran on the machine, recorded with the result")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    if args.cache == "warm" and args.cache_dir is None:
        ap.error("--cache warm needs --cache-dir")

    from arttag.kafka.admin import create_topics
    from arttag.kafka.topics import StreamTopics
    from arttag.settings import StreamSettings

    base = StreamSettings()
    bundle = (args.bundle or base.bundle_dir).expanduser()
    details = bundle_details(bundle)
    deadline = (datetime.fromisoformat(args.deadline).replace(tzinfo=timezone.utc).timestamp()
                if args.deadline else None)
    run = uuid.uuid4().hex[:6]
    update = {"topic_prefix": f"bench-bf-{run}."}
    if args.partitions:
        update["partitions"] = args.partitions
    kafka = base.kafka.model_copy(update=update)
    topics = StreamTopics.for_prefix(kafka.topic_prefix)
    logs = Path(tempfile.mkdtemp(prefix=f"arttag-bench-backfill-{run}-"))
    if args.cache == "cold":
        cache_dir: Path | None = logs / "embedding-cache"  # empty: nothing cached
        cache_dir.mkdir()
    elif args.cache == "warm":
        cache_dir = logs / "embedding-cache"
        shutil.copytree(args.cache_dir, cache_dir)  # the workers write back here, not into the source
    else:
        cache_dir = None
    cached_at_start = cache_entries(cache_dir, details["encoder"])
    result: dict = {
        "benchmark": "whole catalogue through `arttag backfill` and the stream worker, end to end",
        "command": portable_command("bench/backfill.py", argv if argv is not None else sys.argv[1:]),
        "label": args.label or f"{args.cache}-{args.workers}w",
        "note": args.note,
        "machine": machine_details(note="2 cores shared with other engineers' processes and the broker: "
                                        "compare runs made side by side, not across days"),
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "bundle": details, "catalogue": portable_path(args.catalogue),
        "workers": args.workers, "partitions": kafka.partitions, "limit": args.limit,
        "batch_max_events": base.batch_max_events, "batch_max_ms": base.batch_max_ms,
        "embedding_cache": {"mode": args.cache, "entries_at_start": cached_at_start,
                            "cache_size": 0 if args.cache == "off" else base.encoder.cache_size},
    }
    log.info("run %s: bundle %s (%s training artworks), cache %s (%d embeddings), %d worker(s), %d partitions",
             run, details["model_version"], details["training_artworks"], args.cache, cached_at_start,
             args.workers, kafka.partitions)

    create_topics(kafka)
    watcher = OutputWatcher(kafka, topics)
    watcher.start()
    group = f"bench-bf-{run}"
    wlogs = [logs / f"worker-{i}.log" for i in range(args.workers)]
    procs = []
    ready = []
    try:
        t_workers = time.monotonic()
        for i, path in enumerate(wlogs):
            procs.append(start_worker(kafka, bundle, group, path, args.cache, cache_dir, i))
        for proc, path in zip(procs, wlogs):
            ready.append(round(wait_ready(proc, path), 1))
        wait_assigned(kafka, group, args.workers)
        log.info("worker(s) ready in %s s (all: %.1f s)", ready, time.monotonic() - t_workers)

        env = {**os.environ, "ARTTAG_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
               "ARTTAG_KAFKA__TOPIC_PREFIX": kafka.topic_prefix}
        cmd = [sys.executable, "-m", "arttag_cli", "backfill", str(args.catalogue), "--no-progress"]
        if args.limit:
            cmd += ["--limit", str(args.limit)]
        t0_wall, t0 = time.time(), time.monotonic()
        publisher = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        published: int | None = None
        publish_s: float | None = None
        publish_out = ""
        progress: list[dict] = []
        last_report, last_count = t0, 0
        stop_reason = "completed"
        while True:
            time.sleep(0.5)
            now = time.monotonic()
            if published is None and publisher.poll() is not None:
                publish_s = now - t0
                publish_out = publisher.stdout.read() if publisher.stdout else ""
                if publisher.returncode != 0:
                    raise SystemExit(f"arttag backfill failed: {publish_out[-3000:]}")
                m = re.search(r"published (\d+) events", publish_out)
                published = int(m.group(1)) if m else None
                log.info("arttag backfill: %s", publish_out.strip().splitlines()[0] if publish_out.strip() else "")
            count = watcher.count()
            for proc, path in zip(procs, wlogs):
                if proc.poll() is not None:
                    raise SystemExit(f"a worker exited: {path.read_text(errors='replace')[-3000:]}")
            if now - last_report >= args.progress_s:
                rate = (count - last_count) / (now - last_report)
                elapsed = now - t0
                total = published or (args.limit or 0)
                eta = (total - count) / rate if rate > 0 and total else float("nan")
                log.info("%6d / %s artworks done, %.1f/s now, %.1f/s overall, %.0f s elapsed, ~%.0f s to go",
                         count, published or "?", rate, count / elapsed, elapsed, eta)
                progress.append({"elapsed_s": round(elapsed, 1), "done": count, "per_s_last_interval": round(rate, 2)})
                last_report, last_count = now, count
            if published is not None and count >= published:
                break
            if deadline is not None and time.time() >= deadline:
                stop_reason = "deadline"
                break
            if published is not None and time.time() - max(watcher.last_at, t0_wall + publish_s) > args.stall_s:
                stop_reason = "stalled"
                break
        end_wall = watcher.last_at if stop_reason == "completed" else time.time()
        elapsed = end_wall - t0_wall
        done = watcher.count()
        log.info("%s: %d artworks in %.1f s (%.2f/s)", stop_reason, done, elapsed, done / elapsed if elapsed else 0)

    except BaseException:
        # a failed run leaves no worker or publisher behind, nor its topics
        from arttag_stream.demo import stop_worker

        for proc in [*procs, *([publisher] if "publisher" in locals() else [])]:
            if proc.poll() is None:
                stop_worker(proc, timeout_s=60)
        delete_topics(kafka)
        raise
    # SIGTERM: the workers finish their batch, commit, and write their embedding cache back.
    from arttag_stream.demo import stop_worker

    t_stop = time.monotonic()
    exits = [stop_worker(p, timeout_s=180) for p in procs]
    stop_s = time.monotonic() - t_stop
    time.sleep(2)
    watcher.stop_flag.set()
    watcher.join(10)
    duplicates = sum(n - 1 for n in watcher.suggestion_ids.values())
    cached_at_end = cache_entries(cache_dir, details["encoder"])
    if args.keep_cache and cache_dir is not None:
        if args.keep_cache.exists():
            shutil.rmtree(args.keep_cache)
        shutil.copytree(cache_dir, args.keep_cache)
    delete_topics(kafka)

    completed = stop_reason == "completed"
    result.update({
        "completed": completed,
        "stop_reason": stop_reason,
        "rows_published": published,
        "artworks_done": done,
        "suggestions": len(watcher.suggestion_ids),
        "suggestions_seen_twice_or_more": duplicates,
        "dead_letters": watcher.dead_letters,
        "seconds": round(elapsed, 1),
        "events_per_s": round(done / elapsed, 2) if elapsed else None,
        # the processing alone: first artwork event on the input topic to the last suggestion
        # (leaves out the CLI's start-up, which is in `seconds`)
        "first_event_to_last_s": (round(watcher.last_at - watcher.first_input_at, 1)
                                  if watcher.first_input_at and watcher.last_at else None),
        "processing_events_per_s": (round(done / (watcher.last_at - watcher.first_input_at), 2)
                                    if completed and watcher.last_at > watcher.first_input_at > 0 else None),
        "publish_s": round(publish_s, 1) if publish_s is not None else None,
        "publish_output": publish_out.strip().splitlines()[0] if publish_out.strip() else None,
        "worker_ready_s": ready,
        "worker_stop_s": round(stop_s, 1), "worker_exit_codes": exits,
        "workers_detail": [worker_batches(p) for p in wlogs],
        "progress": progress,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "how": ("clock from starting `arttag backfill` (workers already running and ready) to the last "
                "artwork's suggestion arriving at a consumer of the output topics; nothing extrapolated"),
    })
    result["embedding_cache"]["entries_at_end"] = cached_at_end
    result["cpu_during_run"] = cpu_during_run()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("completed", "artworks_done", "seconds", "events_per_s")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
