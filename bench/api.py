"""Benchmark of ``POST /v1/suggest``: requests/s and p50/p99 latency with the real model, over loopback.

The API runs as ``arttag api`` in a subprocess (uvicorn, one worker) with the bundle in
``--bundle`` and the ONNX encoder from the usual settings; the encoder's
embedding cache is off, so every request really runs the model. The load
generator (httpx, asyncio) sends:

- open loop: requests at fixed offered rates, each scheduled on a clock whether or
  not earlier ones finished (latency counts from the scheduled time, so a slow
  server cannot hide queueing: no coordinated omission); in-flight requests are capped;
- closed loop: N clients sending back to back, for the throughput at each concurrency;
- batch: ``POST /v1/suggest/batch`` with 32 artworks, to compare per-artwork cost.

Payloads are distinct sample artworks without their tags (new artworks to tag).
Writes ``bench/results/api.json`` with the machine details and a ``headline``.

    .venv/bin/python bench/api.py --bundle ~/.cache/arttag/bundles/current
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
from machine_info import bundle_details, machine_details, portable_command

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "shared" / "arttag" / "data" / "tate_sample.jsonl.gz"

log = logging.getLogger("bench.api")


# -- payloads and machine ---------------------------------------------------------------------


def load_payloads(limit: int = 4000) -> list[dict]:
    """Sample artworks as request bodies, held-out splits first, without their tags."""
    from arttag.catalogue.records import iter_catalogue
    from arttag.catalogue.split import split_of

    records = list(iter_catalogue(SAMPLE))
    records.sort(key=lambda r: {"dev": 0, "rerank": 1}.get(split_of(r.artwork_id), 2))
    out, seen = [], set()
    for r in records:
        artwork = r.metadata.model_dump(mode="json", exclude={"tags"}, exclude_none=True)
        key = json.dumps(artwork, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(artwork)
        if len(out) >= limit:
            break
    return out


def machine() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for name in ("onnxruntime", "fastapi", "uvicorn", "httpx", "numpy"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:  # a missing package is just not reported
            pass
    return machine_details(
        versions=versions,
        note="server and load generator share these CPUs; other processes may run on the machine too",
    )


# -- the server -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(bundle_dir: Path, port: int, max_batch: int, threads: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "ARTTAG_BUNDLE_DIR": str(bundle_dir),
        "ARTTAG_LATEST_VIEW": "false",  # measure suggestions, not Kafka
        "ARTTAG_ENCODER__CACHE_SIZE": "0",  # every request runs the model
        "ARTTAG_ENCODER__EXECUTION_PROVIDER": "cpu",
        "ARTTAG_ENCODER__INTRA_OP_THREADS": str(threads),
        "ARTTAG_MAX_BATCH": str(max_batch),
        "ARTTAG_LOG_LEVEL": "WARNING",  # no access log: its cost is not the API's
        # one anonymous client measures capacity: the per-client limit and queue bound would shed it
        "ARTTAG_RATE_LIMIT_ANONYMOUS_PER_S": "0",
        "ARTTAG_QUEUE_MAX_ARTWORKS": "100000",
        "ARTTAG_QUEUE_MAX_WAIT_S": "0",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "arttag_cli", "api", "--host", "127.0.0.1", "--port", str(port)],
        env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def wait_ready(base: str, proc: subprocess.Popen, timeout_s: float = 300) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the API exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            body = httpx.get(f"{base}/readyz", timeout=5).json()
            if body.get("model_loaded"):
                return body
            if any("cannot load" in d for d in body.get("detail", [])):
                raise SystemExit(f"the API cannot load the model: {body['detail']}")
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit("the API did not load the model in time")


# -- load generation --------------------------------------------------------------------------


def summarise(latencies_s: list[float], errors: int, wall_s: float, sent: int) -> dict:
    lat = sorted(x * 1000 for x in latencies_s)

    def pct(p: float) -> float | None:
        if not lat:
            return None
        return round(lat[max(0, math.ceil(p / 100 * len(lat)) - 1)], 1)  # nearest rank

    return {
        "sent": sent, "ok": len(lat), "errors": errors,
        "achieved_rps": round(len(lat) / wall_s, 2) if wall_s else None,
        "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99),
        "max_ms": round(lat[-1], 1) if lat else None,
        "mean_ms": round(statistics.fmean(lat), 1) if lat else None,
    }


async def suggest_ok(client: httpx.AsyncClient, artwork: dict, limit: int) -> bool:
    """One ``POST /v1/suggest``; True when it answered 200 (any other status or a transport error is False)."""
    try:
        r = await client.post("/v1/suggest", json={"artwork": artwork, "options": {"limit": limit}})
    except httpx.HTTPError:
        return False
    return r.status_code == 200


async def open_loop(client: httpx.AsyncClient, payloads: list[dict], start_index: int, rate: float,
                    duration_s: float, max_in_flight: int, limit: int) -> dict:
    n = int(rate * duration_s)
    latencies: list[float] = []
    errors = 0
    dropped = 0
    in_flight = 0
    t0 = time.perf_counter() + 0.05

    async def one(i: int, scheduled: float) -> None:
        nonlocal errors, in_flight
        try:
            if await suggest_ok(client, payloads[(start_index + i) % len(payloads)], limit):
                latencies.append(time.perf_counter() - scheduled)
            else:
                errors += 1
        finally:
            in_flight -= 1

    tasks = []
    for i in range(n):
        scheduled = t0 + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if in_flight >= max_in_flight:
            dropped += 1  # the server fell behind by more than the cap: counted, not sent
            continue
        in_flight += 1
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - t0
    out = summarise(latencies, errors + dropped, wall, n)
    out.update({"offered_rps": rate, "duration_s": duration_s, "not_sent_over_cap": dropped})
    return out


async def closed_loop(client: httpx.AsyncClient, payloads: list[dict], start_index: int,
                      concurrency: int, duration_s: float, limit: int) -> dict:
    latencies: list[float] = []
    errors = 0
    counter = start_index
    stop_at = time.perf_counter() + duration_s

    async def worker() -> None:
        nonlocal errors, counter
        while time.perf_counter() < stop_at:
            counter += 1
            t = time.perf_counter()
            if await suggest_ok(client, payloads[counter % len(payloads)], limit):
                latencies.append(time.perf_counter() - t)
            else:
                errors += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    out = summarise(latencies, errors, time.perf_counter() - t0, len(latencies) + errors)
    out.update({"concurrency": concurrency, "duration_s": duration_s})
    return out


async def batch_run(client: httpx.AsyncClient, payloads: list[dict], start_index: int, size: int,
                    requests: int, limit: int) -> dict:
    latencies = []
    for k in range(requests):
        items = [{"id": str(j), "artwork": payloads[(start_index + k * size + j) % len(payloads)]}
                 for j in range(size)]
        t = time.perf_counter()
        r = await client.post("/v1/suggest/batch", json={"artworks": items, "options": {"limit": limit}})
        r.raise_for_status()
        latencies.append(time.perf_counter() - t)
    per_request = statistics.median(latencies) * 1000
    return {"batch_size": size, "requests": requests, "p50_ms_per_request": round(per_request, 1),
            "p50_ms_per_artwork": round(per_request / size, 2),
            "artworks_per_s": round(size * requests / sum(latencies), 1)}


def tagger_batches(base: str) -> dict:
    """The server's histogram of artworks per tagger call: shows concurrent requests being merged."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    count = re.search(r"^arttag_api_tagger_batch_size_count (\S+)", text, re.M)
    total = re.search(r"^arttag_api_tagger_batch_size_sum (\S+)", text, re.M)
    if not count or not total or float(count.group(1)) == 0:
        return {}
    return {"tagger_calls": int(float(count.group(1))), "artworks": int(float(total.group(1))),
            "mean_artworks_per_call": round(float(total.group(1)) / float(count.group(1)), 2)}


async def run(args: argparse.Namespace, base: str, payloads: list[dict]) -> dict:
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    results: dict = {"open_loop": [], "closed_loop": [], "batch": None}
    index = 0
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        # warm-up: first calls load lazily (scorer indexes, onnxruntime arenas)
        for i in range(args.warmup):
            (await client.post("/v1/suggest", json={"artwork": payloads[i], "options": {"limit": args.limit}}))\
                .raise_for_status()
        index = args.warmup
        for rate in args.rates:
            before = tagger_batches(base)
            res = await open_loop(client, payloads, index, rate, args.duration, args.max_in_flight, args.limit)
            index += int(rate * args.duration)
            res["tagger"] = _delta(before, tagger_batches(base))
            log.info("open loop %.0f rps: %s", rate, res)
            results["open_loop"].append(res)
        for concurrency in args.concurrency:
            before = tagger_batches(base)
            res = await closed_loop(client, payloads, index, concurrency, args.duration, args.limit)
            index += res["sent"]
            res["tagger"] = _delta(before, tagger_batches(base))
            log.info("closed loop x%d: %s", concurrency, res)
            results["closed_loop"].append(res)
        if args.batch_requests:
            results["batch"] = await batch_run(client, payloads, index, args.batch_size, args.batch_requests,
                                               args.limit)
            log.info("batch: %s", results["batch"])
    return results


def _delta(before: dict, after: dict) -> dict:
    if not after:
        return {}
    calls = after["tagger_calls"] - before.get("tagger_calls", 0)
    artworks = after["artworks"] - before.get("artworks", 0)
    return {"tagger_calls": calls, "artworks": artworks,
            "mean_artworks_per_call": round(artworks / calls, 2) if calls else None}


def main(argv: list[str] | None = None) -> int:
    from arttag.settings import ApiSettings

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", "--bundle-dir", dest="bundle_dir", type=Path, default=ApiSettings().bundle_dir,
                   help="model bundle (default: ARTTAG_BUNDLE_DIR)")
    p.add_argument("--rates", type=float, nargs="+", default=[5, 10, 20, 40], help="offered requests/s")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16], help="closed-loop clients")
    p.add_argument("--duration", type=float, default=30.0, help="seconds per run")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--limit", type=int, default=10, help="suggestions per artwork")
    p.add_argument("--max-in-flight", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--batch-requests", type=int, default=10)
    p.add_argument("--threads", type=int, nargs="+", default=[0, 1],
                   help="onnxruntime intra-op threads, one server run each (0: onnxruntime's choice)")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "api.json")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)

    from arttag.model.bundle import read_manifest

    manifest = read_manifest(args.bundle_dir)
    payloads = load_payloads()
    info = machine()
    runs = []
    for threads in args.threads:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start_server(args.bundle_dir, port, max(args.batch_size, 64), threads)
        try:
            started = time.monotonic()
            ready = wait_ready(base, proc)
            load_s = time.monotonic() - started
            log.info("model %s loaded in %.1fs (intra-op threads %d)", ready.get("model_version"), load_s, threads)
            results = asyncio.run(run(args, base, payloads))
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        runs.append({"intra_op_threads": threads, "load_s": round(load_s, 1), **results})
    info["loadavg_at_end"] = list(os.getloadavg())

    def at10(run: dict) -> dict | None:
        return next((r for r in run["open_loop"] if r["offered_rps"] == 10), None)

    # the headline is the best configuration at 10 requests/s, and says which one it is
    best = min(runs, key=lambda r: (at10(r) or {}).get("p99_ms") or float("inf"))
    best10 = at10(best)
    ok_rates = [r["achieved_rps"] for r in best["open_loop"]
                if r["errors"] == 0 and r["p99_ms"] is not None and r["p99_ms"] < 1000]
    max_rps = max([r["achieved_rps"] or 0 for r in best["closed_loop"]] + ok_rates + [0])
    report = {
        "benchmark": "POST /v1/suggest, single artwork, loopback, one uvicorn worker",
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": portable_command("bench/api.py", argv if argv is not None else sys.argv[1:]),
        "headline": {
            "p99_ms_at_10rps": best10["p99_ms"] if best10 else None,
            "p50_ms_at_10rps": best10["p50_ms"] if best10 else None,
            "max_rps": max_rps,
            "intra_op_threads": best["intra_op_threads"],
            "bundle_training_artworks": bundle_details(args.bundle_dir)["training_artworks"],
            "target": "p99 < 150 ms at 10 requests/s",
            "target_met": bool(best10 and best10["p99_ms"] is not None and best10["p99_ms"] < 150
                               and not best10["errors"]),
        },
        "machine": info,
        "bundle": bundle_details(args.bundle_dir),
        "model": {"model_version": manifest.get("model_version"), "encoder": manifest.get("encoder"),
                  "encoder_cache": "off",
                  "suggestions_per_artwork": args.limit},
        "settings": {"rates": args.rates, "concurrency": args.concurrency, "duration_s": args.duration,
                     "max_in_flight": args.max_in_flight, "warmup_requests": args.warmup,
                     "intra_op_threads": args.threads, "batch_size": args.batch_size},
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["headline"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
