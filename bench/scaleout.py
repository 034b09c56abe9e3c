"""Scale-out: throughput of one consumer group with 1 and with 2 stream workers, the same artworks each time.

Each run is ``bench/backfill.py`` on fresh topics (``--partitions``): the workers start and
the group settles, then ``arttag backfill --limit N`` publishes the first N catalogue rows and
the clock runs until the last one's suggestion is out. The worker counts alternate
(1, 2, 1, 2, ...) for ``--rounds`` rounds, because the load other processes put on a shared
machine drifts; rates are harmonic means per worker count (total artworks over total time).
The embedding cache is off, so every artwork runs the model.

What a small machine shows: that the group splits the partitions and that the throughput
of N workers is bounded by the cores they share. On 2 cores, one worker's onnxruntime
already uses both, so a second worker cannot double it; a machine with a core budget per
worker (or one host per worker) is where the per-worker figure multiplies, up to one
worker per partition.

    ARTTAG_KAFKA__BOOTSTRAP_SERVERS=... nice -n 5 .venv/bin/python bench/scaleout.py --bundle BUNDLE --limit 1500
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import backfill
from harness import write_result
from machine_info import bundle_details, machine_details, portable_command, portable_path

REPO = Path(__file__).resolve().parents[1]


def harmonic(runs: list[dict]) -> float | None:
    """Artworks over time, first artwork event to last suggestion, over all runs (the CLI's start-up left out)."""
    seconds = sum(r["first_event_to_last_s"] for r in runs)
    return round(sum(r["artworks_done"] for r in runs) / seconds, 2) if seconds else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--catalogue", type=Path, default=backfill.TATE)
    ap.add_argument("--limit", type=int, default=1500, help="artworks per run")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts, alternated")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "scaleout.json")
    args = ap.parse_args(argv)

    runs: list[dict] = []
    tmp = Path(tempfile.mkdtemp(prefix="arttag-bench-scaleout-"))
    for rnd in range(args.rounds):
        for n in args.workers:
            out = tmp / f"r{rnd}-w{n}.json"
            backfill.main(["--bundle", str(args.bundle), "--catalogue", str(args.catalogue), "--cache", "off",
                           "--workers", str(n), "--partitions", str(args.partitions), "--limit", str(args.limit),
                           "--progress-s", "15", "--stall-s", "120", "--out", str(out)])
            d = json.loads(out.read_text())
            runs.append({"round": rnd + 1, "workers": n, "completed": d["completed"],
                         "artworks_done": d["artworks_done"], "seconds": d["seconds"], "first_event_to_last_s": d["first_event_to_last_s"],
                         "events_per_s": d["events_per_s"], "processing_events_per_s": d["processing_events_per_s"],
                         "suggestions_seen_twice_or_more": d["suggestions_seen_twice_or_more"],
                         "per_worker_artworks": [w["artworks"] for w in d["workers_detail"]],
                         "worker_ready_s": d["worker_ready_s"]})
            print(json.dumps(runs[-1]), flush=True)
    by_count = {n: [r for r in runs if r["workers"] == n and r["completed"]] for n in args.workers}
    rates = {str(n): harmonic(rs) for n, rs in by_count.items() if rs}
    one = rates.get("1")
    result = {
        "benchmark": "one consumer group, 1 vs 2 stream workers, same artworks, embedding cache off",
        "command": portable_command("bench/scaleout.py", argv if argv is not None else sys.argv[1:]),
        "machine": machine_details(note="2 cores shared with other processes and the broker; the ratio "
                                        "between worker counts, measured in alternation, is what counts"),
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "bundle": bundle_details(args.bundle),
        "catalogue": portable_path(args.catalogue),
        "partitions": args.partitions,
        "artworks_per_run": args.limit,
        "runs": runs,
        "headline": {
            "events_per_s_by_workers": rates,
            "speedup_2_vs_1": (round(rates["2"] / one, 3) if one and rates.get("2") else None),
            "single_worker_events_per_s": one,
            "partitions": args.partitions,
            "duplicates": sum(r["suggestions_seen_twice_or_more"] for r in runs),
            "usable_cpus": machine_details()["usable_cpus"],
        },
        "how": ("each run: workers started and the group settled, then the first N catalogue rows published "
                "with `arttag backfill --limit N`; rate from the first artwork event on the input topic to the "
                "last suggestion (the CLI's start-up left out); worker counts alternated; total artworks over total time per count"),
    }
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
