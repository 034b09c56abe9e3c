"""Benchmark of the stream worker with the real model on the local Kafka: throughput, latency, backfill.

Steps (each on its own fresh topic prefix):

1. **backfill**: ``arttag backfill``'s code publishes the whole Tate catalogue into fresh
   topics (measured in full);
2. **stream vs pipeline alone**: a worker (``python -m arttag_stream``, as in production)
   starts on that backlog. Then, in alternation, ``--rounds`` times: the worker is paused
   (SIGSTOP) while this process runs the bundle's tagger (ONNX encoder + scorers +
   explanations) alone on ``--segment-events`` artworks of the same region of the catalogue,
   in batches of ``ARTTAG_BATCH_MAX_EVENTS``, one ``tagger.suggest`` call after another (what
   ``arttag suggest`` and the API do); then the worker is resumed and the time for
   its next ``--segment-events`` suggestions (burst end to burst end, at a consumer of
   ``tags.suggestions.v1``, from the fifth burst after the resume on: the bursts before
   finish work begun before the pause) is taken; one more pipeline segment closes. Alternating matters:
   the load other processes put on this 2-core machine drifts by tens of percent within
   minutes. Both rates are harmonic means (total artworks over total time). The worker
   does the same work and more (decoding, events, Kafka), but overlaps it: it encodes the
   next batch ahead while it scores one and publishes the one before (docs/stream.md);
3. **latency at half capacity**: a fresh worker with no backlog; other artworks (from row
   20,000 on) are produced at half the stream throughput of step 2 for
   ``--latency-s`` seconds; latency = suggestion received by the consumer minus artwork
   message produced, p50/p99 over all of them.

The encoder's embedding cache is off in both the pipeline and the worker, so every
artwork really runs the model (Tate has many repeated texts, which the cache would make
free). Nothing is extrapolated: the time the whole catalogue takes comes from
``bench/backfill.py``'s measured runs (``--backfill-cold`` / ``--backfill-warm``, their
results files), and the cost after the encoder from the cost breakdown's results
(``--cost``), when those files exist; the headline says null otherwise.

    .venv/bin/python bench/stream.py --bundle BUNDLE [--segment-events 128]
    .venv/bin/python bench/stream.py --sources-only   # after new backfill or cost results

Writes ``bench/results/stream.json`` with machine details, the bundle's version and
training size, and a ``headline``. The machine is shared: the ratios within one run
(stream over pipeline, measured in alternation) are what count, not the absolute rates.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from harness import TopicReader, kafka_env, start_process, wait_for_line, write_result
from machine_info import bundle_details, machine_details, portable_command, portable_path

REPO = Path(__file__).resolve().parents[1]
TATE = REPO.parent / "shared" / "data" / "tate" / "artworks.jsonl.gz"

log = logging.getLogger("bench.stream")


SETTLE_BURSTS = 5
"""Bursts after a pause before a stream window opens: the batches in flight in the worker at
most (one encoded ahead, one scored, one published and two waiting for Kafka), plus the one
being closed."""


def machine() -> dict:
    import onnxruntime

    return machine_details(
        onnxruntime=onnxruntime.__version__, kafka=os.environ.get("KAFKA_VERSION", "3.9.2"),
        note="2 cores shared with other engineers' processes and the broker; figures are noisy",
    )


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, int(round(q / 100 * (len(values) - 1)))))
    return values[k]


class SuggestionWatcher(TopicReader):
    """Consumes the suggestions topic from the beginning; records arrival time per suggestion id."""

    clock = staticmethod(time.time)  # compared with the events' wall-clock send times

    def __init__(self, kafka, topic: str) -> None:
        super().__init__(kafka, [topic])
        self.arrivals: dict[str, tuple[float, str]] = {}  # suggestion id -> (time, artwork id)
        self.order: list[float] = []
        self.lock = threading.Lock()

    # The two ids lead the record (the event's field order). Reading them from its first
    # bytes keeps this process, which shares the machine with the worker it measures, from
    # parsing every suggestion's explanations (tens of kilobytes each) while the worker runs.
    IDS = re.compile(rb'"suggestion_id":("(?:[^"\\]|\\.)*"),"artwork_id":("(?:[^"\\]|\\.)*")')

    def handle(self, msg, now: float) -> None:
        value = msg.value()
        if value is None:
            return
        found = self.IDS.search(value, 0, 1024)
        if found:
            suggestion_id, artwork_id = json.loads(found[1]), json.loads(found[2])
        else:
            data = json.loads(value)
            suggestion_id, artwork_id = data["suggestion_id"], data["artwork_id"]
        with self.lock:
            if suggestion_id not in self.arrivals:
                self.arrivals[suggestion_id] = (now, artwork_id)
                self.order.append(now)

    def count(self) -> int:
        with self.lock:
            return len(self.order)


def start_worker(kafka, bundle_dir: Path, group: str, log_path: Path, batch: int, batch_ms: int,
                 session_timeout_s: float = 10):
    env = {
        **kafka_env(kafka),
        "ARTTAG_BUNDLE_DIR": str(bundle_dir),
        "ARTTAG_ENCODER_KIND": "onnx",
        "ARTTAG_ENCODER__CACHE_SIZE": "0",
        "ARTTAG_CONSUMER_GROUP": group,
        "ARTTAG_METRICS_PORT": "0",
        "ARTTAG_BATCH_MAX_EVENTS": str(batch),
        "ARTTAG_BATCH_MAX_MS": str(batch_ms),
        "ARTTAG_SESSION_TIMEOUT_S": str(session_timeout_s),
        "ARTTAG_HEARTBEAT_INTERVAL_S": "1",
    }
    return start_process("arttag_stream", env, log_path)


def wait_ready(proc, log_path: Path, timeout_s: float = 180.0) -> float:
    return wait_for_line(proc, log_path, "Worker ready", timeout_s)


def stop_worker(proc) -> int:
    from arttag_stream.demo import stop_worker as stop

    return stop(proc, timeout_s=60)


def read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def backfill_summary(d: dict, path: Path) -> dict:
    """The figures of one bench/backfill.py run that the stream results repeat."""
    keys = ("completed", "stop_reason", "rows_published", "artworks_done", "seconds", "events_per_s",
            "processing_events_per_s", "publish_s", "workers", "partitions", "finished_at")
    return {"file": portable_path(path), **{k: d.get(k) for k in keys},
            "embedding_cache": d.get("embedding_cache"), "model_version": d.get("bundle", {}).get("model_version")}


def post_encoder_cost(cost: dict | None) -> tuple[float | None, float | None, str]:
    """(ms per artwork after the encoder, speedup over the code before) from the cost breakdown's
    results, and where they come from."""
    if not cost:
        return None, None, "no cost breakdown results (bench/results/cost.json) yet"
    head = cost.get("headline", cost)
    ms = head.get("post_encoder_ms_per_artwork")
    speedup = head.get("post_encoder_speedup_vs_before")
    return ms, speedup, "bench/results/cost.json (old and new code side by side, same bundle), its headline"


def attach_sources(result: dict, args: argparse.Namespace) -> None:
    """Figures this run does not measure, read from the results files that do: the measured
    backfills (bench/backfill.py) and the post-encoder cost (the cost breakdown)."""
    cold, warm = read_json(args.backfill_cold), read_json(args.backfill_warm)
    result["backfill_tate"] = {name: backfill_summary(d, path) for name, d, path in
                               (("cold", cold, args.backfill_cold), ("warm", warm, args.backfill_warm)) if d}
    post_ms, speedup, cost_how = post_encoder_cost(read_json(args.cost))
    whole = cold is not None and cold.get("limit") is None  # a --limit run is not the catalogue
    measured_s = cold["seconds"] if whole and cold.get("completed") else None
    result["headline"].update({
        "backfill_tate_s": measured_s,
        "backfill_tate_measured_s": measured_s,
        "post_encoder_ms_per_artwork": post_ms,
        "post_encoder_speedup_vs_before": speedup,
    })
    result["headline_sources"] = {
        "backfill_tate_measured_s": (f"{portable_path(args.backfill_cold)}: whole catalogue through "
                                     "`arttag backfill` and one worker, embedding cache cold, measured end "
                                     "to end" if measured_s is not None else
                                     "no completed cold run (see backfill_tate: how far it got); never "
                                     "extrapolated"),
        "post_encoder_ms_per_artwork": cost_how,
        "throughput_ratio_vs_pipeline": "stream worker / pipeline alone, measured in alternation in this run",
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", "--bundle-dir", dest="bundle", type=Path, default=None,
                    help="model bundle (default: ARTTAG_BUNDLE_DIR)")
    ap.add_argument("--backfill-cold", type=Path, default=REPO / "bench" / "results" / "backfill_tate_cold.json",
                    help="bench/backfill.py's result with the embedding cache cold")
    ap.add_argument("--backfill-warm", type=Path, default=REPO / "bench" / "results" / "backfill_tate_warm.json")
    ap.add_argument("--cost", type=Path, default=REPO / "bench" / "results" / "cost.json",
                    help="the cost breakdown's result (post-encoder cost, before and after)")
    ap.add_argument("--catalogue", type=Path, default=TATE)
    ap.add_argument("--segment-events", type=int, default=64,
                    help="artworks per measured segment (a multiple of ARTTAG_BATCH_MAX_EVENTS)")
    ap.add_argument("--rounds", type=int, default=8, help="stream segments, between pipeline ones")
    ap.add_argument("--latency-s", type=float, default=60.0)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "stream.json")
    ap.add_argument("--sources-only", action="store_true",
                    help="measure nothing: re-read the backfill and cost results into the existing --out")
    args = ap.parse_args()
    if args.sources_only:
        result = json.loads(args.out.read_text())
        attach_sources(result, args)
        write_result(args.out, result, measured=False)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("arttag").setLevel(logging.WARNING)

    from arttag.catalogue.records import CatalogueReport, iter_catalogue
    from arttag.events import ArtworkCreated, encode_event
    from arttag.kafka import make_producer
    from arttag.kafka.admin import admin_client, create_topics
    from arttag.kafka.clients import flush_or_fail
    from arttag.kafka.topics import StreamTopics
    from arttag.model.bundle import open_tagger
    from arttag.model.tagger import SuggestOptions
    from arttag.settings import StreamSettings
    from arttag_stream.backfill import backfill

    base = StreamSettings()
    bundle_dir = (args.bundle or base.bundle_dir).expanduser()
    batch, batch_ms = base.batch_max_events, base.batch_max_ms
    run = uuid.uuid4().hex[:6]
    result: dict = {"command": portable_command("bench/stream.py", sys.argv[1:]),
                    "machine": machine(), "started_at": datetime.now(timezone.utc).isoformat(),
                    "bundle": bundle_details(bundle_dir), "catalogue": portable_path(args.catalogue),
                    "batch_max_events": batch, "batch_max_ms": batch_ms, "encoder_cache": "off"}
    # The workers' logs stay after the run for a look at what happened; the system's temporary
    # folder is wherever this machine keeps scratch files.
    logs = Path(tempfile.mkdtemp(prefix=f"arttag-bench-stream-{run}-"))
    log.info("worker logs in %s", logs)

    # the artworks and the tagger for the pipeline-alone segments
    report = CatalogueReport()
    records = []
    for record in iter_catalogue(args.catalogue, report):
        records.append(record)
        if len(records) >= 20000 + 2000:
            break
    encoder_settings = base.encoder.model_copy(update={"cache_size": 0})
    tagger = open_tagger(bundle_dir, encoder_settings)
    options = SuggestOptions(limit=base.suggestion_limit)
    seg = args.segment_events
    # Pipeline segments use the first artworks of the catalogue: the region the stream works on.
    segments = [[r.metadata for r in records[i * seg:(i + 1) * seg]] for i in range(args.rounds + 1)]
    tagger.suggest(segments[0][:4], options)  # warm-up (sessions, first allocations)

    def measure_pipeline(metas) -> float:
        t0 = time.perf_counter()
        for i in range(0, len(metas), batch):
            tagger.suggest(metas[i:i + batch], options)
        return len(metas) / (time.perf_counter() - t0)

    # 1. backfill the whole catalogue into fresh topics
    kafka = base.kafka.model_copy(update={"topic_prefix": f"bench-{run}."})
    create_topics(kafka)
    topics = StreamTopics.for_prefix(kafka.topic_prefix)
    bf = backfill(kafka, args.catalogue, progress=False)
    log.info("backfill published %d events in %.1fs (%.0f/s), %d bad rows", bf.published,
             bf.elapsed_s, bf.events_per_s, len(bf.bad_rows))
    result["backfill_publish"] = {"events": bf.published, "seconds": round(bf.elapsed_s, 2),
                                  "events_per_s": round(bf.events_per_s, 1),
                                  "bad_rows": len(bf.bad_rows), "rows_read": bf.rows_read}

    # 2. stream on the backlog, interleaved with pipeline-alone segments: P S P S ... P.
    # The load other processes put on the machine drifts by tens of percent within minutes,
    # so the two are measured in alternation; the worker is paused (SIGSTOP) while the
    # pipeline runs alone, with a session timeout long enough not to lose its partitions.
    watcher = SuggestionWatcher(kafka, topics.suggestions)
    watcher.start()
    wlog = logs / "worker-throughput.log"
    proc = start_worker(kafka, bundle_dir, f"bench-{run}", wlog, batch, batch_ms,
                        session_timeout_s=120)
    ready_s = wait_ready(proc, wlog)

    def wait_count(n: int, timeout_s: float = 600) -> None:
        deadline = time.monotonic() + timeout_s
        while watcher.count() < n:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited: {wlog.read_text(errors='replace')[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("stream segment timed out")
            time.sleep(0.05)

    wait_count(batch)  # the first batch (start-up) is not measured
    pipeline_rates: list[float] = []
    stream_rates: list[float] = []
    for rnd in range(args.rounds):
        proc.send_signal(signal.SIGSTOP)
        time.sleep(0.5)
        pipeline_rates.append(measure_pipeline(segments[rnd]))
        proc.send_signal(signal.SIGCONT)
        # Backlog batches are full, so suggestions arrive in bursts of `batch`: measure from
        # the end of one burst to the end of the burst `seg` suggestions later. The first
        # bursts after the pause finish batches the worker had begun before it (encoded
        # ahead, scored, waiting for acks): counting them would credit the stream with work
        # done before the window, so the window opens once they are out.
        start_n = (watcher.count() // batch + SETTLE_BURSTS) * batch
        wait_count(start_n)
        wait_count(start_n + seg)
        with watcher.lock:
            t_start, t_end = watcher.order[start_n - 1], watcher.order[start_n + seg - 1]
        stream_rates.append(seg / (t_end - t_start))
        log.info("round %d: pipeline alone %.2f/s, stream %.2f/s", rnd + 1, pipeline_rates[-1],
                 stream_rates[-1])
    proc.send_signal(signal.SIGSTOP)
    pipeline_rates.append(measure_pipeline(segments[args.rounds]))
    proc.send_signal(signal.SIGCONT)
    log.info("pipeline alone (last) %.2f/s", pipeline_rates[-1])
    stop_worker(proc)
    watcher.close(5)
    tagger = None  # the bundle is freed before the stream stage
    # Harmonic means: total events over total time, each side.
    pipeline_eps = len(pipeline_rates) / sum(1 / r for r in pipeline_rates)
    stream_eps = len(stream_rates) / sum(1 / r for r in stream_rates)
    ratio = stream_eps / pipeline_eps
    # Each stream segment against the pipeline segments on either side of it.
    paired = [s / (2 / (1 / pipeline_rates[i] + 1 / pipeline_rates[i + 1]))
              for i, s in enumerate(stream_rates)]
    # Inside the worker: how much of each batch's time the tagger took (the rest is Kafka,
    # decoding, building events, waiting for acks).
    # Median per full batch: a batch that a SIGSTOP pause fell into would skew a sum.
    shares = []
    for line in wlog.read_text(errors="replace").splitlines():
        m = re.search(r"batch of (\d+): .* tagger ([0-9.]+)s, (?:.*, )?batch ([0-9.]+)s", line)
        if m and int(m.group(1)) == batch and float(m.group(3)) > 0:
            shares.append(float(m.group(2)) / float(m.group(3)))
    log.info("stream %.2f/s vs pipeline alone %.2f/s: ratio %.3f", stream_eps, pipeline_eps, ratio)
    result["pipeline"] = {"what": "tagger.suggest on each batch in turn, in one thread, no Kafka",
                          "segment_artworks": seg, "batch": batch,
                          "events_per_s_per_segment": [round(r, 2) for r in pipeline_rates],
                          "events_per_s": round(pipeline_eps, 2)}
    result["stream_throughput"] = {"what": "the worker on a backlog: the next batch encoded ahead while one "
                                           "is scored and the one before published",
                                   "segment_suggestions": seg, "rounds": args.rounds,
                                   "settle_bursts_after_pause": SETTLE_BURSTS,
                                   "events_per_s_per_segment": [round(r, 2) for r in stream_rates],
                                   "events_per_s": round(stream_eps, 2),
                                   "worker_ready_s": round(ready_s, 1),
                                   "ratio_vs_pipeline": round(ratio, 3),
                                   "paired_ratios": [round(r, 3) for r in paired],
                                   "paired_ratio_median": round(statistics.median(paired), 3),
                                   "worker_tagger_share_of_batch_time_median":
                                       round(statistics.median(shares), 4) if shares else None}

    # 3. latency at half capacity, fresh topics and worker, other artworks
    lkafka = base.kafka.model_copy(update={"topic_prefix": f"bench-lat-{run}."})
    create_topics(lkafka)
    ltopics = StreamTopics.for_prefix(lkafka.topic_prefix)
    lwatcher = SuggestionWatcher(lkafka, ltopics.suggestions)
    lwatcher.start()
    llog = logs / "worker-latency.log"
    proc = start_worker(lkafka, bundle_dir, f"bench-lat-{run}", llog, batch, batch_ms)
    wait_ready(proc, llog)
    time.sleep(2)
    rate = stream_eps / 2
    pool = records[20000:]
    n = min(len(pool), int(rate * args.latency_s))
    p = make_producer(lkafka, **{"linger.ms": 0})
    sent: dict[str, float] = {}
    start = time.time()
    for i, record in enumerate(pool[:n]):
        target = start + i / rate
        delay = target - time.time()
        if delay > 0:
            time.sleep(delay)
        event = ArtworkCreated(artwork_id=record.artwork_id, revision=1, artwork=record.metadata)
        # Latency counts from the scheduled time: a slow producer cannot hide queueing.
        sent[record.artwork_id] = target
        p.produce(ltopics.created, key=record.artwork_id.encode(), value=encode_event(event))
        p.poll(0)
    flush_or_fail(p)
    deadline = time.monotonic() + 120
    while lwatcher.count() < len(sent) and time.monotonic() < deadline:
        time.sleep(0.2)
    stop_worker(proc)
    lwatcher.close(5)
    latencies = [t - sent[aid] for t, aid in lwatcher.arrivals.values() if aid in sent]
    p50, p99 = pct(latencies, 50), pct(latencies, 99)
    log.info("latency at %.1f/s: %d of %d answered, p50 %.3fs p99 %.3fs", rate, len(latencies),
             len(sent), p50, p99)
    result["latency_half_capacity"] = {
        "offered_rate_per_s": round(rate, 2), "sent": len(sent), "answered": len(latencies),
        "p50_s": round(p50, 3), "p90_s": round(pct(latencies, 90), 3), "p99_s": round(p99, 3),
        "max_s": round(max(latencies), 3) if latencies else None,
        "mean_s": round(statistics.fmean(latencies), 3) if latencies else None,
    }

    # clean up the bench topics (they hold the whole catalogue)
    admin = admin_client(kafka)
    names = [t for t in admin.list_topics(timeout=10).topics
             if t.startswith((kafka.topic_prefix, lkafka.topic_prefix))]
    if names:
        admin.delete_topics(names, operation_timeout=30)

    result["headline"] = {
        "throughput_ratio_vs_pipeline": round(ratio, 3),
        "p99_latency_s_at_half_capacity": round(p99, 3),
        "events_per_s": round(stream_eps, 2),
        "bundle_training_artworks": result["bundle"]["training_artworks"],
        "pipeline_events_per_s": round(pipeline_eps, 2),
    }
    attach_sources(result, args)
    result["targets"] = {"throughput_ratio_vs_pipeline": ">= 0.95", "p99_latency_s_at_half_capacity": "< 2",
                         "bundle_training_artworks": ">= 40000", "post_encoder_speedup_vs_before": ">= 4"}
    result["finished_at"] = datetime.now(timezone.utc).isoformat()
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
