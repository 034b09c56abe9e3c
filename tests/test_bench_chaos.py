"""bench/chaos.py's recovery figures: the worker restarts apart from the broker's, split at "Worker ready"."""

from __future__ import annotations

import importlib.util
import sys
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _load():
    sys.path.insert(0, str(REPO / "bench"))  # chaos.py imports its neighbours
    try:
        spec = importlib.util.spec_from_file_location("arttag_bench_chaos", REPO / "bench" / "chaos.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(REPO / "bench"))


chaos = _load()


def test_the_worker_restarts_median_leaves_out_the_broker_restart_and_the_group_takeover():
    kills = [{"kind": "restart", "recovery_s": r} for r in (9.0, 12.0, 10.0)]
    kills += [{"kind": "restart", "recovery_s": None},  # never published again: no figure to count
              {"kind": "group takeover"}]
    out = chaos.worker_restart_recovery(kills)
    assert out["values"] == [9.0, 12.0, 10.0] and out["p50"] == 10.0 and out["max"] == 12.0
    assert "ready_s" not in out  # no log gave a ready time


def test_recovery_is_split_at_the_ready_line_when_the_log_has_one():
    kills = [{"kind": "restart", "recovery_s": 10.0, "ready_s": 8.0, "ready_to_suggestion_s": 2.0},
             {"kind": "restart", "recovery_s": 12.0, "ready_s": None, "ready_to_suggestion_s": None}]
    out = chaos.worker_restart_recovery(kills)
    assert out["ready_s"]["values"] == [8.0] and out["ready_to_suggestion_s"]["p50"] == 2.0
    assert out["p50"] == 10.0


def test_the_ready_time_is_read_from_the_first_ready_line_of_a_run(tmp_path):
    log = tmp_path / "w1.log"
    started = datetime(2026, 12, 2, 1, 48, 40).timestamp()
    log.write_text("[2026-12-02 01:48:46,445] [1] [INFO] [^Worker]: Starting...\n"
                   "Worker ready, said someone without a timestamp\n"
                   "[2026-12-02 01:48:49,250] [1] [INFO] [^---Recovery]: Worker ready\n"
                   "[2026-12-02 01:49:30,000] [1] [INFO] [^---Recovery]: Worker ready\n")
    worker = chaos.Worker("w1", {}, log)
    worker._runs.append((0, started))
    assert abs(worker.ready_s(1) - 9.25) < 1e-6
    second = log.stat().st_size
    log.write_text(log.read_text() + "===== chaos: start 2 of w1 =====\n[2026-12-02 01:50:00,000] [2] "
                   "[INFO] [^Worker]: Starting...\n")
    worker._runs.append((second, started + 80))
    assert worker.ready_s(2) is None  # killed before it was ready
    assert abs(worker.ready_s(1) - 9.25) < 1e-6  # the second run's lines are not the first's
